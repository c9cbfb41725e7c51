"""Indexes for the pages' frame (what every page reads before its own figures):

- ``signal_book_clock`` (book_id, candle_time): the book's clock, ``Max(candle_time)``
  of its signals, becomes one index probe instead of a scan of the book's signals;
- ``signal_book_newest`` (book_id, id): the newest signal id of a book, part of the
  stamp the page cache keys a book's pages by (``analytics.page_cache``), also one probe.

Raw SQL so the model's state is unchanged (read-side tuning, like 0008); the same
statements work on PostgreSQL and SQLite. See docs/performance.md, "The page frame and
the page cache".
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("signals", "0008_decision_blocks_index")]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE INDEX IF NOT EXISTS signal_book_clock "
                "ON signals_signal (book_id, candle_time)"
            ),
            reverse_sql="DROP INDEX IF EXISTS signal_book_clock",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS signal_book_newest ON signals_signal (book_id, id)",
            reverse_sql="DROP INDEX IF EXISTS signal_book_newest",
        ),
    ]
