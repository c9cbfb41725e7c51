# Month rows and the sums Sharpe needs. Segments are derived rows: the old ones are
# deleted here and every book's are written again on its next read (segments VERSION 2).

import datetime

from django.db import migrations, models


def forget(apps, schema_editor):
    apps.get_model("analytics", "EquitySegment").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0004_equity_segments'),
    ]

    operations = [
        migrations.RunPython(forget, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name='equitysegment',
            name='segment_book_day',
        ),
        migrations.AddField(
            model_name='equitysegment',
            name='grain',
            field=models.CharField(choices=[('day', 'one UTC day'), ('month', 'one calendar month (UTC), folded from its days')], default='day', max_length=5),
        ),
        migrations.AddField(
            model_name='equitysegment',
            name='squares',
            field=models.DecimalField(decimal_places=60, default=0, help_text="The sum of the days' totals squared.", max_digits=96),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='equitysegment',
            name='first',
            field=models.DateField(default=datetime.date(1970, 1, 1), help_text='The first day with a trade.'),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='equitysegment',
            name='last',
            field=models.DateField(default=datetime.date(1970, 1, 1), help_text='The last day with a trade.'),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name='equitysegment',
            name='day',
            field=models.DateField(help_text="The trades' UTC exit day, or a month row's first day."),
        ),
        migrations.AddIndex(
            model_name='equitysegment',
            index=models.Index(fields=['book', 'grain', 'day'], name='segment_book_grain_day'),
        ),
    ]
