"""Numbers in the admin written as a trader reads them.

Money: ``1,234.56 USD`` (the market's quote currency, a real minus sign on losses);
prices and quantities: six significant digits, at least two decimals, grouped
(``30,163.73``, ``0.000123457``); R multiples and percentages: two decimals. The columns store 12 decimals; the admin never shows them raw.
Rates (a win rate as a fraction): a percentage to one decimal (``31.5 %``); ratios
(Sharpe, profit factor): two decimals; p and q values: three. Every number, everywhere,
rounds half up and writes a loss with U+2212, never an ASCII hyphen.

These are the rules of the whole product: the pages (``analytics.views.price_places``,
``analytics.templatetags.trader.money``, ``analytics.trades.significant``) and
``analytics.selectors.book_quote_currency`` call them. They live here, in the bottom layer,
because markets and signals never import analytics.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MINUS = "\N{MINUS SIGN}"
NOTHING = "\N{EN DASH}"


def quote_currency(symbol: str) -> str:
    """ "USD" for "BTC/USD" and "BTC/USD:USD"; "" when the symbol has no quote."""
    _, slash, rest = symbol.partition("/")
    return rest.partition(":")[0] if slash else ""


def _signed(amount: Decimal, places: int) -> str:
    text = f"{abs(amount):,.{places}f}"
    return f"{MINUS}{text}" if amount < 0 else text


def money(value: Decimal | float | None, currency: str = "") -> str:
    """``1,234.56 USD``; a loss with a real minus sign (U+2212); an en dash for nothing."""
    if value is None:
        return NOTHING
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{_signed(amount, 2)} {currency}".rstrip()


def signed_money(value: Decimal | float | None, currency: str = "") -> str:
    """Like ``money`` with a ``+`` on gains, for amounts that read as a change."""
    text = money(value, currency)
    if value is not None and Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP) > 0:
        return f"+{text}"
    return text


def price_places(value: Decimal) -> int:
    """Decimals that show ``value`` to six significant digits, at least two."""
    return max(2, 5 - value.adjusted()) if value else 2


def price(value: Decimal | float | None, currency: str = "") -> str:
    """A price (or a quantity) to six significant digits: ``30,163.73 USD``, ``0.000123457``."""
    if value is None:
        return NOTHING
    number = Decimal(str(value))
    places = price_places(number)
    amount = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{_signed(amount, places)} {currency}".rstrip()


def two(value: Decimal | float | None, suffix: str = "") -> str:
    """An R multiple or a percentage to two decimals: ``1.25 R``, ``0.84 %``."""
    if value is None:
        return NOTHING
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{_signed(amount, 2)} {suffix}".rstrip()


def percent(value: Decimal | float | None) -> str:
    """A rate given as a fraction, as a percentage to one decimal: ``0.315`` as ``31.5 %``."""
    if value is None:
        return NOTHING
    amount = (Decimal(str(value)) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{_signed(amount, 1)} %"


def number(value: Decimal | float | None, places: int = 2) -> str:
    r"""A plain figure (a ratio, a p value) to ``places`` decimals, grouped, with a real minus
    sign: ``\N{MINUS SIGN}5.25``."""
    if value is None:
        return NOTHING
    amount = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return _signed(amount, places)


def compact(value: Decimal | float | None, unit: str = "") -> str:
    """An observed value or threshold in its unit, without trailing zeros: ``240 minutes``,
    ``4.5 %``, ``1,000,000``."""
    if value is None:
        return NOTHING
    number = Decimal(str(value))
    places = min(price_places(number), 8)
    text = _signed(number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), places)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}".rstrip()
