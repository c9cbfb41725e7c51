"""Stored numbers reproduce themselves: on a market priced near 1e-8, every stored trade
gives back its own P&L from its stored prices, quantity and fees, and its exit candle
from its signal's stored stop and target."""

import random
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from markets.models import Candle
from markets.selectors import candle_arrays
from markets.timestamps import ms_from_utc
from shadow.models import ShadowTrade
from signals.domain.fills import FillCosts, TradePlan, TradeResult, simulate
from signals.models import Book, BookStrategy, PaperTrade
from signals.tests.candles import START

MARKET = {"exchange": "testex", "symbol": "SAT/BTC", "timeframe": "1h"}


def store_cheap_market(count: int = 900) -> None:
    """An hourly random walk around 1e-8 BTC, at the candle table's 12 decimal places."""
    rng = random.Random(12)
    price, rows = 1.2e-8, []
    for i in range(count):
        open_ = price
        price = max(2e-9, price * (1 + rng.gauss(0, 0.012)))
        high = max(open_, price) * (1 + abs(rng.gauss(0, 0.004)))
        low = min(open_, price) * (1 - abs(rng.gauss(0, 0.004)))
        rows.append(
            Candle(
                **MARKET,
                open_time=START + timedelta(hours=i),
                open=Decimal(f"{open_:.12f}"),
                high=Decimal(f"{high:.12f}"),
                low=Decimal(f"{low:.12f}"),
                close=Decimal(f"{price:.12f}"),
                volume=Decimal(1),
                source=Candle.Source.SYNTHETIC,
            )
        )
    Candle.objects.bulk_create(rows)


def stored_trades(book: Book) -> list[PaperTrade | ShadowTrade]:
    closed = {"book": book, "status": "closed"}
    return [
        *PaperTrade.objects.filter(**closed).select_related("signal"),
        *ShadowTrade.objects.filter(**closed).select_related("signal"),
    ]


@pytest.mark.django_db
def test_a_stored_trade_on_a_market_near_1e_8_reproduces_its_pnl_and_exit_candle(settings):
    settings.NOTIONAL_BY_QUOTE = {"BTC": Decimal("0.02")}
    store_cheap_market()
    call_command(
        "replay",
        *("--exchange", MARKET["exchange"], "--symbol", MARKET["symbol"]),
        *("--timeframe", MARKET["timeframe"], "--book", "cheap", "--no-progress"),
        stdout=StringIO(),
    )
    book = Book.objects.get(name="cheap")
    fee_rate = float(BookStrategy.objects.get(book=book).fee_rate)
    costs = FillCosts(
        slippage_bps=float(book.economics["slippage_bps"]), fee_rate=fee_rate, notional=1.0
    )
    candles = candle_arrays(**MARKET)
    times = candles.time.tolist()
    trades = stored_trades(book)
    assert len(trades) > 30

    finer_than_12_places = 0
    for trade in trades:
        signal = trade.signal
        entry, exit_, quantity = (
            float(trade.entry_price),
            float(trade.exit_price),
            float(trade.quantity),
        )
        direction = 1.0 if trade.side == "long" else -1.0
        fees = fee_rate * quantity * (entry + exit_)
        pnl = direction * (exit_ - entry) * quantity - fees
        assert fees == pytest.approx(float(trade.fees), rel=1e-9, abs=0)
        assert pnl == pytest.approx(float(trade.pnl), rel=1e-9, abs=0)

        # The exit candle again, from the signal's stored stop and target.
        plan = TradePlan(
            side=signal.side,
            stop=float(signal.stop_loss),
            target=float(signal.take_profit),
            max_hold=signal.max_hold_candles,
            notional=quantity * entry,
        )
        again = simulate(plan, candles, times.index(ms_from_utc(trade.entry_time)), costs)
        assert isinstance(again, TradeResult)
        assert (again.exit_time, again.exit_reason) == (
            ms_from_utc(trade.exit_time),
            trade.exit_reason,
        )
        assert again.exit_price == pytest.approx(exit_, rel=1e-12)
        finer_than_12_places += signal.stop_loss != signal.stop_loss.quantize(Decimal("1e-12"))
    # What 12 fixed decimal places could not hold: the stops carry more digits than that.
    assert finer_than_12_places > len(trades) // 2
