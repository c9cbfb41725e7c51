"""Books freeze their economics (ADR 0016).

Data migration: a book made before this migration froze only its fee rates; it gets the
other economics from the settings in force when the migration runs (slippage, notional,
paper balance) with every quote currency it trades settled the way it traded until now:
FILL_NOTIONAL and PAPER_BALANCE in units of that quote, so its ablation legs and later
runs go on exactly as the book went.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def _quote(symbol: str) -> str:
    return symbol.split("/", 1)[-1].split(":", 1)[0]


def freeze_existing(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    Book = apps.get_model("signals", "Book")
    BookStrategy = apps.get_model("signals", "BookStrategy")
    for book in Book.objects.filter(economics={}):
        symbols = BookStrategy.objects.filter(book=book).values_list("symbol", flat=True)
        book.economics = {
            "reference_currency": settings.REFERENCE_CURRENCY,
            "slippage_bps": str(settings.FILL_SLIPPAGE_BPS),
            "fee_rate": str(settings.FILL_FEE_RATE),
            "sizing": "notional",
            "notional": str(settings.FILL_NOTIONAL),
            "risk_fraction": str(settings.FILL_RISK_FRACTION),
            "paper_balance": str(settings.PAPER_BALANCE),
            "notional_by_quote": {},
            "balance_by_quote": {},
            "quotes": {
                quote: {
                    "notional": str(settings.FILL_NOTIONAL),
                    "balance": str(settings.PAPER_BALANCE),
                    "how": "made before books froze their economics: sized as it traded, "
                    f"in units of {quote}",
                }
                for quote in sorted({_quote(s) for s in symbols})
            },
        }
        book.save(update_fields=["economics"])


class Migration(migrations.Migration):
    dependencies = [
        ("signals", "0010_perf_pages"),
    ]

    operations = [
        migrations.AddField(
            model_name="book",
            name="economics",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Fee, slippage, sizing and paper balance per quote currency, frozen "
                "at the book's start from the settings (signals.economics); its ablation legs "
                "and later runs trade on this copy.",
            ),
        ),
        migrations.RunPython(freeze_existing, migrations.RunPython.noop),
    ]
