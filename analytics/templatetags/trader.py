"""Template filters that write numbers the way a trader reads them."""

from decimal import Decimal

from django import template

from markets import admin_format

register = template.Library()


@register.filter
def money(value: Decimal | float | None, currency: str = "") -> str:
    """``1,234.50 USD``; a loss with a real minus sign (U+2212); an en dash for nothing
    (``markets.admin_format.money``: the admin writes money the same way)."""
    return admin_format.money(value, currency)


@register.filter
def signed_money(value: Decimal | float | None, currency: str = "") -> str:
    """Like ``money`` with a ``+`` on gains, for amounts that read as a change."""
    text = money(value, currency)
    if value is not None and Decimal(str(value)).quantize(Decimal("0.01")) > 0:
        return f"+{text}"
    return text
