"""The latency histogram also by the candle's day: a write re-sums the candle days it
touched, as the rollups do. The rows are derived (``shadow.latency``, version 2): they
go here and every book's are summed again on its next read."""

import datetime

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shadow", "0007_latency_histogram"),
    ]

    operations = [
        migrations.RunSQL("DELETE FROM shadow_latencyhistogram", migrations.RunSQL.noop),
        migrations.RemoveConstraint(
            model_name="latencyhistogram",
            name="latency_book_day_bucket",
        ),
        migrations.AddField(
            model_name="latencyhistogram",
            name="candle_day",
            field=models.DateField(
                default=datetime.date(1970, 1, 1),
                help_text="The UTC day of the signal's candle (its open).",
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="latencyhistogram",
            name="n",
            field=models.BigIntegerField(help_text="Decisions of those days in that bucket."),
        ),
        migrations.AddConstraint(
            model_name="latencyhistogram",
            constraint=models.UniqueConstraint(
                fields=("book", "candle_day", "day", "bucket"), name="latency_book_days_bucket"
            ),
        ),
    ]
