"""A partial index on the blocking verdicts: the pages count a signal's blockers (sole vs
several guards) and sum per guard over blocks only, about one decision in seven.

Raw SQL so the model's state is unchanged (the index is a read-side tuning, not part of
the schema the code relies on); the same statement works on PostgreSQL and SQLite.
On the 20,000-signal benchmark book, EXPLAIN ANALYZE of the opportunity page's totals
query turns eight per-signal index scans with a filter (8 of 10 rows thrown away) into
index-only lookups; see docs/performance.md, "Pages at 1,000,000 signals".
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("signals", "0007_book_window_and_ablation")]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE INDEX IF NOT EXISTS decision_blocks_by_signal "
                "ON signals_guarddecision (signal_id, guard) WHERE verdict = 'block'"
            ),
            reverse_sql="DROP INDEX IF EXISTS decision_blocks_by_signal",
        )
    ]
