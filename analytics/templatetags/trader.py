"""Template filters that write numbers the way a trader reads them: the one home of the
pages' number text (each calls ``markets.admin_format``, where the admin's live too).
Money to the cent, rates as a percentage to one decimal, ratios to two decimals, p and
q values to three, a real minus sign (U+2212) on every negative figure."""

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
    return admin_format.signed_money(value, currency)


@register.filter
def percent(value: Decimal | float | None) -> str:
    """A rate given as a fraction: ``0.315`` as ``31.5 %``; an en dash for nothing."""
    return admin_format.percent(value)


@register.filter
def ratio(value: Decimal | float | None) -> str:
    r"""A ratio (Sharpe, profit factor, an R multiple) to two places: ``\N{MINUS SIGN}5.25``."""
    return admin_format.number(value, 2)


@register.filter
def probability(value: Decimal | float | None) -> str:
    """A p or q value to three places: ``0.044``."""
    return admin_format.number(value, 3)


@register.filter
def whole(value: Decimal | float | None) -> str:
    r"""A count (or a difference of counts), grouped, with a real minus sign: ``\N{MINUS SIGN}4``."""
    return admin_format.number(value, 0)
