"""Orders are claimed before each send (ADR 0017, one order per intent).

``sends``, ``claimed_at`` and ``visible_by`` record each claim; ``sending`` is the status
of a claimed order. Data migration: an order left ``new`` or ``unknown`` by the code
before this one may have been sent without a claim, so it becomes ``unknown`` with one
send counted and ``visible_by`` now: it is looked up by its client order id before
anything sends it again.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models.functions import Now


def unclaimed_sends_are_looked_up_first(
    apps: StateApps, schema_editor: BaseDatabaseSchemaEditor | None
) -> None:
    ExchangeOrder = apps.get_model("signals", "ExchangeOrder")
    ExchangeOrder.objects.filter(status__in=["new", "unknown"]).update(
        status="unknown", sends=1, visible_by=Now()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("signals", "0011_book_economics"),
    ]

    operations = [
        migrations.AddField(
            model_name="exchangeorder",
            name="claimed_at",
            field=models.DateTimeField(
                blank=True, help_text="When the last send was claimed (database clock).", null=True
            ),
        ),
        migrations.AddField(
            model_name="exchangeorder",
            name="sends",
            field=models.PositiveSmallIntegerField(
                default=0, help_text="How many times a pass claimed this order to send it."
            ),
        ),
        migrations.AddField(
            model_name="exchangeorder",
            name="visible_by",
            field=models.DateTimeField(
                blank=True,
                help_text="The last send, if the exchange took it, is listed there by then "
                "(claim + client timeout + the exchange's visibility delay): only a lookup "
                "begun after this moment can prove the order absent and allow another send.",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="exchangeorder",
            name="status",
            field=models.CharField(
                choices=[
                    ("new", "recorded, never sent"),
                    ("sending", "claimed by a pass and being sent"),
                    ("open", "open"),
                    ("closed", "filled"),
                    ("canceled", "canceled"),
                    ("rejected", "rejected"),
                    ("unknown", "sent, but the exchange has not told its fate yet"),
                ],
                default="new",
                max_length=10,
            ),
        ),
        migrations.RunPython(unclaimed_sends_are_looked_up_first, migrations.RunPython.noop),
    ]
