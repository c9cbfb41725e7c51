"""Indexes for the aggregate pages (opportunity cost, leaderboard, summary, performance)
at a million signals: read-side tuning, so the models' state is unchanged.

- ``perf_agg_signal_book_state``: a book's signals in one state (the blocked ones), in id
  order, with the columns the breakdowns group and filter on. The opportunity page's
  queries read it alone (index-only) and merge-join it, in id order, with the partial
  index of blocking decisions (0008) and the shadow trades by signal.
- ``perf_agg_paper_closed``: a book's paper trades by status and exit time with their
  P&L (the summary's windows, the performance page's trades, the leaderboard's).

PostgreSQL covers the extra columns with ``INCLUDE``; SQLite has no ``INCLUDE``, so
there they are trailing key columns (an index covers a query there just the same).
"""

from django.db import migrations

# name: (table, key columns, covered columns)
INDEXES = {
    "perf_agg_signal_book_state": (
        "signals_signal",
        "book_id, state, id",
        "candle_time, book_strategy_id, symbol",
    ),
    "perf_agg_paper_closed": (
        "signals_papertrade",
        "book_id, status, exit_time",
        "pnl, signal_id",
    ),
}


def create(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for name, (table, keys, covered) in INDEXES.items():
        columns = f"{keys}) INCLUDE ({covered}" if postgres else f"{keys}, {covered}"
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")


def drop(apps, schema_editor):
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    # After the frame's indexes (0009_perf_frame: signals by book and candle time, which
    # the summary's windows use too), so that the graph has one leaf.
    dependencies = [("signals", "0009_perf_frame")]

    operations = [migrations.RunPython(create, drop)]
