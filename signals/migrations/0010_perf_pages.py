"""Indexes for the guards and health pages at a million signals: read-side tuning, so
the models' state is unchanged.

- ``perf_pages_decision_blocks``: the blocking decisions by signal with the guard and
  its configuration, so the guards page's single pass over them
  (``analytics.selectors.guards._guard_sums``) reads the index alone, in signal order (the
  window counting each signal's blockers needs no sort), instead of the table.
- ``perf_pages_decided``: a signal's transitions out of ``generated`` in id order with
  their wall-clock time: the health page's decision latency takes the first one per
  signal with one index-only probe.
- ``perf_pages_transitions_created``: transitions by wall-clock time with their signal,
  for the health page's throughput over the last 24 hours (a bounded range, whatever
  the length of the history).

PostgreSQL covers the extra columns with ``INCLUDE``; SQLite has no ``INCLUDE``, so
there they are trailing key columns (an index covers a query there just the same).
"""

from django.db import migrations

# name: (table, key columns, covered columns, partial condition)
INDEXES = {
    "perf_pages_decision_blocks": (
        "signals_guarddecision",
        "signal_id, guard",
        "book_guard_id",
        "verdict = 'block'",
    ),
    "perf_pages_decided": (
        "signals_signaltransition",
        "signal_id, id",
        "created_at",
        "from_state = 'generated'",
    ),
    "perf_pages_transitions_created": (
        "signals_signaltransition",
        "created_at",
        "signal_id",
        "",
    ),
}


def create(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for name, (table, keys, covered, condition) in INDEXES.items():
        columns = f"{keys}) INCLUDE ({covered}" if postgres else f"{keys}, {covered}"
        where = f" WHERE {condition}" if condition else ""
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}){where}")


def drop(apps, schema_editor):
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("signals", "0009_perf_agg")]

    operations = [migrations.RunPython(create, drop)]
