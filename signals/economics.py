"""A book's economics: fee, slippage, sizing and paper balance, frozen when it starts.

Settings only seed a NEW book (``economics_seed``). From then on the book's own copy is
what it trades on: its ablation legs copy it, its later live runs read it, and changing
the settings never changes it. Quote currencies are settled the first time the book
meets a market quoted in them (``economics_with_quotes``) and never change afterwards:

- the reference currency itself (``REFERENCE_CURRENCY``, USD by default): the notional
  ``FILL_NOTIONAL`` and the balance ``PAPER_BALANCE`` as they are;
- a quote with a ``NOTIONAL_BY_QUOTE`` entry: that notional, and the balance of
  ``PAPER_BALANCE_BY_QUOTE`` (else ``PAPER_BALANCE`` scaled like the notional);
- a quote with stored candles of a conversion market (``BTC/USD`` for BTC, or ``USD/BTC``):
  the notional is converted at each signal's candle close (``engine.QuoteSizing``) and
  the balance once, at the close of the conversion candle last closed by the book's
  start (else the first one stored);
- otherwise as many units of the quote as of the reference currency (said on the book).

Decimals are kept as text so the frozen figures are exact; the engine gets floats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Min, QuerySet

from markets.models import Candle
from signals.domain.engine import Market, QuoteSizing, quote_of
from signals.domain.fills import FillCosts

Economics = dict[str, Any]


def economics_seed() -> Economics:
    """Today's settings as the economics of a new book (no quote currency settled yet)."""
    return {
        "reference_currency": settings.REFERENCE_CURRENCY,
        "slippage_bps": str(settings.FILL_SLIPPAGE_BPS),
        "fee_rate": str(settings.FILL_FEE_RATE),
        "sizing": settings.FILL_SIZING,
        "notional": str(settings.FILL_NOTIONAL),
        "risk_fraction": str(settings.FILL_RISK_FRACTION),
        "paper_balance": str(settings.PAPER_BALANCE),
        "notional_by_quote": {q: str(v) for q, v in settings.NOTIONAL_BY_QUOTE.items()},
        "balance_by_quote": {q: str(v) for q, v in settings.PAPER_BALANCE_BY_QUOTE.items()},
        "quotes": {},
    }


def economics_with_quotes(
    economics: Mapping[str, Any], *, markets: Iterable[Market], start: datetime | None
) -> Economics:
    """``economics`` with terms for every quote currency of ``markets`` it lacks (settled
    from its own frozen settings and the stored candles as of ``start``, else each
    market's first candle); terms already there are never changed."""
    quotes = dict(economics.get("quotes", {}))
    for market in markets:
        quote = quote_of(market.symbol)
        if quote not in quotes:
            quotes[quote] = _quote_terms(economics, quote, market, start)
    return {**economics, "quotes": quotes}


def _quote_terms(
    economics: Mapping[str, Any], quote: str, market: Market, start: datetime | None
) -> dict[str, Any]:
    reference = economics["reference_currency"]
    notional, balance = Decimal(economics["notional"]), Decimal(economics["paper_balance"])
    balance_set = economics.get("balance_by_quote", {}).get(quote)
    if quote == reference:
        return {"notional": str(notional), "balance": str(balance), "how": "reference currency"}
    if (set_notional := economics.get("notional_by_quote", {}).get(quote)) is not None:
        scaled = balance * Decimal(set_notional) / notional
        return {
            "notional": set_notional,
            "balance": balance_set or str(scaled),
            "how": "NOTIONAL_BY_QUOTE",
        }
    found = _conversion_market(quote, reference, market)
    if found is not None:
        conversion, invert = found
        rate, at = _rate_at_start(conversion, start or _first_candle(market))
        converted = balance * Decimal(repr(rate)) if invert else balance / Decimal(repr(rate))
        return {
            "notional": str(notional),
            "convert": conversion.key,
            "invert": invert,
            "balance": balance_set or str(converted),
            "balance_rate": repr(rate),
            "balance_rate_at": at,
            "how": f"{reference} converted by {conversion.key}",
        }
    return {
        "notional": str(notional),
        "balance": balance_set or str(balance),
        "how": (
            f"no {quote}/{reference} candles stored and no NOTIONAL_BY_QUOTE entry: "
            f"as many {quote} as {reference}"
        ),
    }


def _conversion_market(quote: str, reference: str, market: Market) -> tuple[Market, bool] | None:
    """The stored market that prices ``quote`` in ``reference`` (and whether it is quoted
    the other way round), preferring ``market``'s exchange and timeframe."""
    symbols = {f"{quote}/{reference}": False, f"{reference}/{quote}": True}
    # The likely ones first, by the candle table's index; the table-wide look only if not.
    for symbol, invert in symbols.items():
        same = Market(market.exchange, symbol, market.timeframe)
        if _stored(same).exists():
            return same, invert
    stored = set(
        Candle.objects.filter(symbol__in=symbols)
        .values_list("exchange", "symbol", "timeframe")
        .distinct()
        .order_by()
    )
    if not stored:
        return None
    exchange, symbol, timeframe = min(
        stored,
        key=lambda m: (m[0] != market.exchange, m[2] != market.timeframe, symbols[m[1]], m),
    )
    return Market(exchange, symbol, timeframe), symbols[symbol]


def _stored(market: Market) -> QuerySet[Candle]:
    return Candle.objects.filter(
        exchange=market.exchange, symbol=market.symbol, timeframe=market.timeframe
    )


def _first_candle(market: Market) -> datetime | None:
    first: datetime | None = _stored(market).aggregate(first=Min("open_time"))["first"]
    return first


def _rate_at_start(conversion: Market, start: datetime | None) -> tuple[float, str]:
    """The close of the conversion candle last closed by ``start`` (else the first one
    stored) and when it closed."""
    step = timedelta(milliseconds=conversion.step_ms)
    candles = _stored(conversion)
    if start is not None:
        candles = candles.filter(open_time__lte=start - step).order_by("-open_time")
    row = candles.values_list("open_time", "close").first()
    if row is None:
        row = _stored(conversion).order_by("open_time").values_list("open_time", "close").first()
    assert row is not None, f"{conversion.key} has no candle"
    opened, close = row
    return float(close), (opened + step).isoformat()


def economics_costs(economics: Mapping[str, Any], fee_rate: Decimal | None = None) -> FillCosts:
    """The fill costs of ``economics`` (with ``fee_rate``, default its own), as floats."""
    return FillCosts(
        slippage_bps=float(economics["slippage_bps"]),
        fee_rate=float(economics["fee_rate"] if fee_rate is None else fee_rate),
        notional=float(economics["notional"]),
    )


def economics_sizing(
    economics: Mapping[str, Any],
) -> tuple[dict[str, QuoteSizing], dict[str, float]]:
    """The engine's sizing and starting balance per settled quote currency."""
    risk = economics.get("sizing") == "risk"
    fraction = float(economics["risk_fraction"]) if risk else None
    sizing: dict[str, QuoteSizing] = {}
    balances: dict[str, float] = {}
    for quote, terms in economics.get("quotes", {}).items():
        sizing[quote] = QuoteSizing(
            notional=float(terms["notional"]),
            convert=terms.get("convert"),
            invert=bool(terms.get("invert", False)),
            risk_fraction=fraction,
        )
        balances[quote] = float(terms["balance"])
    return sizing, balances


def economics_lines(economics: Mapping[str, Any]) -> list[str]:
    """The economics as a trader reads them, one line each (for the admin)."""
    if not economics:
        return ["not frozen yet: the book takes today's settings when it first runs"]
    reference = economics["reference_currency"]
    if economics.get("sizing") == "risk":
        fraction = Decimal(economics["risk_fraction"]) * 100
        sizing = f"by risk: {fraction.normalize():f} % of the balance lost at the stop"
    else:
        sizing = f"{economics['notional']} {reference} a trade"
    lines = [
        f"sizing: {sizing}",
        f"slippage: {economics['slippage_bps']} bps per fill",
        f"fee: {economics['fee_rate']} per side where ccxt knows no taker fee",
        f"paper balance: {economics['paper_balance']} {reference}",
    ]
    for quote, terms in sorted(economics.get("quotes", {}).items()):
        lines.append(
            f"{quote}: balance {terms['balance']} {quote}, notional "
            + (
                f"{terms['notional']} {reference} converted at each signal's close"
                if terms.get("convert")
                else f"{terms['notional']} {quote}"
            )
            + f" ({terms['how']})"
        )
    return lines


class UnsizableSignalError(ValueError):
    """The book's economics cannot size this signal (the message says why)."""


def signal_notional(*, economics: Mapping[str, Any], signal: Any) -> Decimal:
    """The quote notional ``signal`` fixed on its candle's close under the book's frozen
    ``economics``: what the engine sized its paper trade by (``engine.QuoteSizing``),
    so a live order buys what the paper trade bought. Raises ``UnsizableSignalError``."""
    market = Market(signal.exchange, signal.symbol, signal.timeframe)
    quote = quote_of(signal.symbol)
    terms = economics.get("quotes", {}).get(quote)
    if terms is None:
        # A quote the book never settled: the costs' fixed notional, as the engine does.
        return Decimal(economics["notional"])
    entry = Decimal(signal.entry_price)
    if economics.get("sizing") == "risk":
        risk = abs(entry - Decimal(signal.stop_loss))
        if risk == 0:
            raise UnsizableSignalError("risk sizing needs a stop away from the entry")
        return Decimal(economics["risk_fraction"]) * Decimal(terms["balance"]) * entry / risk
    notional = Decimal(terms["notional"])
    if not terms.get("convert"):
        return notional
    conversion = Market.from_key(terms["convert"])
    closed_by = signal.candle_time + timedelta(milliseconds=market.step_ms)
    step = timedelta(milliseconds=conversion.step_ms)
    rate = (
        _stored(conversion)
        .filter(open_time__lte=closed_by - step)
        .order_by("-open_time")
        .values_list("close", flat=True)
        .first()
    )
    if rate is None:
        raise UnsizableSignalError(
            f"no {conversion.key} candle closed by the signal's close to size it"
        )
    return notional * Decimal(rate) if terms.get("invert") else notional / Decimal(rate)
