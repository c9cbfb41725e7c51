"""Equal results: the replay writes what a plain reference loop computes, trade by trade.

The reference (``shadow/tests/reference.py``) runs one candle at a time with plain floats
and shares no code with the engine. Generated candles always; the real FTX BTC-PERP 1m
and 5m and Coinbase BTC/USD 1h series when ``../shared/data`` is there.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Sum

from markets.bars import Bar
from markets.models import Candle
from markets.selectors import bars_between
from markets.services import candles_load_file, candles_upsert
from markets.synthetic import synthetic_bars
from shadow.models import ShadowTrade
from shadow.selectors import book_summary, opportunity_cost
from shadow.tests.reference import Candle as RefCandle
from shadow.tests.reference import Params, RefSignal, reference_run
from signals.models import Book, EquityPoint, PaperTrade, Signal, StrategyConfig
from signals.services import guard_configs_default

pytestmark = pytest.mark.django_db

CENT = 0.005
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def _stored_candles(exchange: str, symbol: str, timeframe: str) -> list[RefCandle]:
    bars = bars_between(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        after=datetime(1970, 1, 1, tzinfo=UTC),
        until=FAR_FUTURE,
        limit=10**7,
    )
    return [
        RefCandle(b.open_time, float(b.open), float(b.high), float(b.low), float(b.close))
        for b in bars
    ]


def _replay(exchange: str, symbols: list[str], timeframe: str, params: Params) -> Book:
    for symbol in symbols:
        StrategyConfig.objects.create(
            name=f"ema {symbol}",
            kind="ema_crossover",
            params={"max_hold": params.max_hold},
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
        )
    guard_configs_default()
    arguments = ["--exchange", exchange, "--timeframe", timeframe, "--book", "under test"]
    for symbol in symbols:
        arguments += ["--symbol", symbol]
    call_command("replay", *arguments, "--no-progress", stdout=StringIO())
    return Book.objects.get(name="under test")


def _state(ref: RefSignal) -> str:
    if ref.blocked:
        return "blocked"
    if ref.failed:
        return "failed"
    assert ref.trade is not None
    return {"pending": "approved", "open": "executed", "closed": "closed", "expired": "expired"}[
        ref.trade.status
    ]


def _assert_trade(row, ref: RefSignal) -> None:
    trade = ref.trade
    assert trade is not None
    where = f"{ref.symbol} {ref.side} signal on {ref.candle_time}"
    assert row.status == trade.status, where
    if trade.status in ("pending", "expired"):
        assert row.entry_time is None, where
        return
    assert row.entry_time == trade.entry_time, where
    assert float(row.entry_price) == pytest.approx(trade.entry_price, rel=1e-9), where
    if trade.status == "open":
        assert row.exit_time is None, where
        return
    assert (row.exit_time, row.exit_reason) == (trade.exit_time, trade.exit_reason), where
    assert float(row.exit_price) == pytest.approx(trade.exit_price, rel=1e-9), where
    assert abs(float(row.pnl) - trade.pnl) < CENT, where
    assert row.closed_at == trade.known_at, where
    long = trade.side == "long"
    mae = (trade.worst - trade.entry_open) / trade.entry_open * 100 * (1 if long else -1)
    mfe = (trade.best - trade.entry_open) / trade.entry_open * 100 * (1 if long else -1)
    assert float(row.mae) == pytest.approx(mae, abs=1e-8), where
    assert float(row.mfe) == pytest.approx(mfe, abs=1e-8), where


def assert_book_equals_reference(book: Book, expected: list[RefSignal]) -> None:
    """Same signals, verdicts, paper trades and shadow outcomes; P&L to the cent."""
    rows = {
        (s.symbol, s.candle_time, s.side): s
        for s in Signal.objects.filter(book=book).prefetch_related("decisions")
    }
    assert len(rows) == len(expected)
    papers = {p.signal_id: p for p in PaperTrade.objects.filter(book=book)}
    shadows = {t.signal_id: t for t in ShadowTrade.objects.filter(book=book)}
    for ref in expected:
        row = rows[(ref.symbol, ref.candle_time, ref.side)]
        where = f"{ref.symbol} {ref.side} signal on {ref.candle_time}"
        assert row.state == _state(ref), where
        assert float(row.stop_loss) == pytest.approx(ref.stop, rel=1e-9), where
        assert float(row.take_profit) == pytest.approx(ref.target, rel=1e-9), where
        decisions = {d.guard: d for d in row.decisions.all()}
        assert set(decisions) == set(ref.verdicts), where
        for guard, (passed, observed) in ref.verdicts.items():
            decision = decisions[guard]
            assert (decision.verdict == "pass") == passed, f"{where}: {guard}"
            if observed is None:
                assert decision.observed_value is None, f"{where}: {guard}"
            else:
                assert float(decision.observed_value) == pytest.approx(observed, abs=1e-9)
        shadow = shadows[row.pk]
        assert shadow.group == ("blocked" if ref.blocked else "control"), where
        _assert_trade(shadow, ref)
        if (
            ref.blocked
            or ref.failed
            or ref.trade is None
            or ref.trade.status in ("pending", "expired")
        ):
            assert row.pk not in papers, where
        else:
            _assert_trade(papers[row.pk], ref)


def assert_reconciles(book: Book, expected: list[RefSignal]) -> None:
    """Opportunity cost = shadow P&L of the blocked signals; paper P&L = its trades'; the
    equity curve ends at the paper P&L."""
    blocked = [
        r.trade.pnl for r in expected if r.blocked and r.trade and r.trade.status == "closed"
    ]
    cost = opportunity_cost(book=book)
    assert cost.closed == len(blocked)
    assert abs(float(cost.total_pnl) - sum(blocked)) < CENT * max(1, len(blocked)) ** 0.5
    shadow_sum = ShadowTrade.objects.filter(book=book, group="blocked", status="closed").aggregate(
        total=Sum("pnl")
    )["total"] or Decimal(0)
    assert abs(cost.total_pnl - shadow_sum) < Decimal("0.000001")
    paper = [
        r.trade.pnl
        for r in expected
        if not r.blocked and not r.failed and r.trade and r.trade.status == "closed"
    ]
    summary = book_summary(book=book)
    assert summary.paper_closed == len(paper)
    assert abs(float(summary.paper_pnl) - sum(paper)) < CENT * max(1, len(paper)) ** 0.5
    trades_sum = PaperTrade.objects.filter(book=book, status="closed").aggregate(total=Sum("pnl"))[
        "total"
    ] or Decimal(0)
    assert abs(summary.paper_pnl - trades_sum) < Decimal("0.000001")
    last = EquityPoint.objects.filter(book=book).order_by("time", "id").last()
    if paper:
        assert last is not None
        assert abs(last.equity - summary.paper_pnl) < Decimal("0.000001")


def _store_generated(symbol: str, seed: int, count: int) -> None:
    bars = synthetic_bars(
        timeframe=timedelta(hours=1),
        count=count,
        end=datetime(2024, 6, 1, tzinfo=UTC),
        seed=seed,
    )
    candles_upsert(exchange="gen", symbol=symbol, timeframe="1h", bars=bars, source="synthetic")


def test_it_equals_the_reference_on_generated_candles_of_two_markets():
    _store_generated("AAA/USD", 1, 1500)
    _store_generated("BBB/USD", 2, 1500)
    params = Params()
    book = _replay("gen", ["AAA/USD", "BBB/USD"], "1h", params)
    expected = reference_run(
        {s: _stored_candles("gen", s, "1h") for s in ("AAA/USD", "BBB/USD")},
        timedelta(hours=1),
        params,
    )
    assert sum(r.blocked for r in expected) > 20, "the data must exercise the guards"
    assert any(not r.blocked for r in expected)
    assert_book_equals_reference(book, expected)
    assert_reconciles(book, expected)


def _ftx_minutes(shared_dir) -> list[Bar]:
    path = shared_dir / "data/candles/ftx/btc-perp-20211231-20220201_1m.csv"
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return [
        Bar(
            datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC),
            Decimal(r["open"]),
            Decimal(r["high"]),
            Decimal(r["low"]),
            Decimal(r["close"]),
            Decimal(r["volume"]),
        )
        for r in rows
    ]


def _resampled(bars: list[Bar], minutes: int) -> list[Bar]:
    groups: dict[datetime, list[Bar]] = {}
    for bar in bars:
        start = bar.open_time.replace(minute=bar.open_time.minute // minutes * minutes)
        groups.setdefault(start, []).append(bar)
    return [
        Bar(
            start,
            group[0].open,
            max(b.high for b in group),
            min(b.low for b in group),
            group[-1].close,
            sum((b.volume for b in group), Decimal(0)),
        )
        for start, group in sorted(groups.items())
    ]


@pytest.mark.shared_data
@pytest.mark.parametrize("timeframe", ["1m", "5m"])
def test_it_equals_the_reference_on_real_ftx_candles(shared_dir, timeframe):
    bars = _ftx_minutes(shared_dir)
    if timeframe == "5m":
        bars = _resampled(bars, 5)
    candles_upsert(exchange="ftx", symbol="BTC-PERP", timeframe=timeframe, bars=bars, source="file")
    params = Params(max_hold=48)
    book = _replay("ftx", ["BTC-PERP"], timeframe, params)
    step = timedelta(minutes=int(timeframe[:-1]))
    expected = reference_run(
        {"BTC-PERP": _stored_candles("ftx", "BTC-PERP", timeframe)}, step, params
    )
    assert len(expected) > 100
    assert_book_equals_reference(book, expected)
    assert_reconciles(book, expected)


@pytest.mark.shared_data
def test_it_equals_the_reference_on_real_coinbase_candles(shared_dir):
    path = shared_dir / "data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv"
    candles_load_file(
        path=path, exchange="coinbase", symbol="BTC/USD", timeframe="1h", now=FAR_FUTURE
    )
    assert Candle.objects.filter(exchange="coinbase").count() > 10000
    # A market of an exchange ccxt knows pays that exchange's taker fee (Coinbase: 1.2 %).
    params = Params(fee_rate=0.012)
    book = _replay("coinbase", ["BTC/USD"], "1h", params)
    expected = reference_run(
        {"BTC/USD": _stored_candles("coinbase", "BTC/USD", "1h")}, timedelta(hours=1), params
    )
    assert_book_equals_reference(book, expected)
    assert_reconciles(book, expected)
