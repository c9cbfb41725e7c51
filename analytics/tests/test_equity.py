"""The equity curve: the vectorised computation equals a plain loop per candle close."""

import numpy as np
import pytest

from analytics.equity import EquityCurve, PaperPosition, equity_curve
from markets.bars import CandleArrays

HOUR = 3_600_000


def candles(closes, start=0):
    closes = np.asarray(closes, dtype=float)
    times = start + np.arange(len(closes), dtype=np.int64) * HOUR
    return CandleArrays(times, closes, closes + 1, closes - 1, closes, np.ones(len(closes)))


def plain(candles_by_market, positions, step):
    """Equity at each close, one close at a time."""
    closes = sorted({int(t) + step for c in candles_by_market.values() for t in c.time})
    out = []
    for close in closes:
        total = 0.0
        for p in positions:
            market = candles_by_market[p.market]
            seen = [i for i, t in enumerate(market.time) if int(t) + step <= close]
            if not seen:
                continue
            last = seen[-1]
            if p.exit_time is not None and p.exit_time + step <= close:
                total += p.pnl
            elif p.entry_time + step <= close:
                total += p.direction * (market.close[last] - p.entry_price) * p.quantity
        out.append(total)
    return closes, out


def test_a_long_and_a_short_on_two_markets_equal_the_plain_loop():
    a = candles([100, 102, 104, 103, 101, 99, 100, 105])
    b = candles([50, 49, 48, 50, 51], start=2 * HOUR)
    positions = [
        PaperPosition("a", 1, 2.0, 101.0, entry_time=1 * HOUR, exit_time=4 * HOUR, pnl=-0.5),
        PaperPosition("b", -1, 10.0, 49.5, entry_time=3 * HOUR, exit_time=None),
        PaperPosition("a", -1, 1.0, 100.0, entry_time=5 * HOUR, exit_time=7 * HOUR, pnl=-5.2),
    ]
    curve = equity_curve({"a": a, "b": b}, positions, step_ms={"a": HOUR, "b": HOUR})
    times, expected = plain({"a": a, "b": b}, positions, HOUR)
    assert curve.time.tolist() == times
    assert curve.equity.tolist() == pytest.approx(expected, abs=1e-9)
    # By hand, at the close of a's third candle: the long of 2 from 101 is worth 2 * (104 - 101).
    assert curve.equity[2] == pytest.approx(2 * (104 - 101))


def test_sampling_keeps_the_last_point():
    curve = EquityCurve(np.arange(1000, dtype=np.int64), np.arange(1000, dtype=float))
    sampled = curve.sampled(10)
    assert len(sampled) == 10
    assert sampled.equity[-1] == 999.0


def test_no_candles_no_curve():
    assert len(equity_curve({}, [], step_ms={})) == 0


@pytest.mark.django_db
def test_a_replayed_books_curve_ends_at_its_realised_and_unrealised_pnl(client, django_user_model):
    from io import StringIO

    from django.core.management import call_command

    from analytics.selectors import book_equity_curve
    from shadow.selectors import book_summary
    from signals.models import Book, PaperTrade
    from signals.tests.candles import MARKET, store_walk

    store_walk(600, seed=4)
    call_command(
        "replay",
        "--exchange",
        MARKET["exchange"],
        "--symbol",
        MARKET["symbol"],
        "--timeframe",
        MARKET["timeframe"],
        "--no-progress",
        stdout=StringIO(),
    )
    book = Book.objects.get()
    curve = book_equity_curve(book=book)
    assert len(curve) > 100
    realised = float(book_summary(book=book).paper_pnl)
    still_open = PaperTrade.objects.filter(book=book, status="open")
    if not still_open.exists():
        assert curve.equity[-1] == pytest.approx(realised, abs=1e-6)

    user = django_user_model.objects.create_user("trader", password="pw-for-the-test-91")
    client.force_login(user)
    page = client.get(f"/?book={book.pk}").content.decode()
    assert "Equity (paper, marked to market)" in page
    assert "<polyline" in page
