"""Read-side tuning of the shadow trades for the aggregate pages (opportunity cost,
leaderboard, summary) at a million signals; the model's state is unchanged.

- ``perf_agg_shadow_by_signal``: a signal's shadow trade with the columns the pages sum
  and filter on, so the blocked signals (``signals.perf_agg_signal_book_state``, in id
  order) merge-join with their shadow trades without reading the table.
- ``perf_agg_shadow_exit_day`` (PostgreSQL): statistics on the UTC day of the exit, so
  the planner knows a year of exits has a few hundred days and groups them in a hash
  rather than sorting every trade (the opportunity page's daily breakdown).
"""

from django.db import migrations

DAY = "((exit_time AT TIME ZONE 'UTC')::date)"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS perf_agg_shadow_by_signal ON shadow_shadowtrade "
            '(signal_id) INCLUDE ("group", status, pnl, exit_time)'
        )
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS perf_agg_shadow_exit_day ON {DAY} "
            "FROM shadow_shadowtrade"
        )
    else:
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS perf_agg_shadow_by_signal ON shadow_shadowtrade "
            '(signal_id, "group", status, pnl, exit_time)'
        )


def drop(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS perf_agg_shadow_by_signal")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS perf_agg_shadow_exit_day")


class Migration(migrations.Migration):
    dependencies = [("shadow", "0002_engine_books")]

    operations = [migrations.RunPython(create, drop)]
