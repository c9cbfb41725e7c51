"""Template filters that write numbers the way a trader reads them."""

from decimal import ROUND_HALF_UP, Decimal

from django import template

register = template.Library()

MINUS = "\N{MINUS SIGN}"


@register.filter
def money(value: Decimal | float | None, currency: str = "") -> str:
    """``1,234.50 USD``; a loss with a real minus sign (U+2212); an en dash for nothing."""
    if value is None:
        return "\N{EN DASH}"
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"{abs(amount):,.2f}"
    sign = MINUS if amount < 0 else ""
    return f"{sign}{text} {currency}".rstrip()


@register.filter
def signed_money(value: Decimal | float | None, currency: str = "") -> str:
    """Like ``money`` with a ``+`` on gains, for amounts that read as a change."""
    text = money(value, currency)
    if value is not None and Decimal(str(value)).quantize(Decimal("0.01")) > 0:
        return f"+{text}"
    return text
