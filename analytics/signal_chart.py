"""The signal page's price chart: the stored candles around one signal with its entry,
stop and target, its paper and shadow fills and its exit with the reason.

``signal_chart`` returns plain JSON data; static/js/signal-chart.js draws it with
TradingView's lightweight-charts (static/vendor/lightweight-charts)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from analytics.selectors import SignalDetail
from markets.admin_format import price_places
from markets.bars import timeframe_delta
from markets.selectors import candle_arrays
from markets.timestamps import ms_from_utc
from signals.models import Side, SignalState, SimulatedTrade

# Candles shown before the signal's candle and after the last exit: enough to see the
# move that made the signal and what the price did once the trade was over.
CANDLES_BEFORE = 24
CANDLES_AFTER = 12
# A trade still open (or a strategy with a very long hold) shows at most this many
# candles after the signal, so the query stays bounded whatever the hold.
MAX_CANDLES_AFTER_SIGNAL = 480


def signal_chart(*, detail: SignalDetail) -> dict[str, Any] | None:
    """The chart of ``detail``'s signal, or ``None`` when no candle of its market is
    stored around it. Reads one bounded window of candles (one query): from
    ``CANDLES_BEFORE`` candles before the signal through its trades' last exit (or the
    longest the trade may run when one is still open) and ``CANDLES_AFTER`` more.

    Times are epoch seconds (UTC) of candle opens; prices are floats for drawing only.
    Every marker sits on a stored candle, sorted by time, as lightweight-charts needs."""
    signal = detail.signal
    step = timeframe_delta(signal.timeframe)
    trades = _trades(detail)
    start = signal.candle_time - step * (CANDLES_BEFORE + 1)
    hold_end = signal.candle_time + step * min(
        signal.max_hold_candles + 1, MAX_CANDLES_AFTER_SIGNAL
    )
    exits = [trade.exit_time for _, trade in trades if trade.exit_time is not None]
    running = any(trade.status in _RUNNING for _, trade in trades)
    last = hold_end if running or not exits else min(max(exits), hold_end)
    candles = candle_arrays(
        exchange=signal.exchange,
        symbol=signal.symbol,
        timeframe=signal.timeframe,
        after=start,
        until=max(last, signal.candle_time) + step * CANDLES_AFTER,
    )
    if len(candles) == 0:
        return None
    times = candles.time // 1000
    markers = _markers(detail, trades, times, step_s=int(step.total_seconds()))
    places = price_places(signal.entry_price)
    return {
        "symbol": signal.symbol,
        "timeframe": signal.timeframe,
        "precision": places,
        "signal_time": ms_from_utc(signal.candle_time) // 1000,
        "candles": [
            [int(t), float(o), float(h), float(low), float(c)]
            for t, o, h, low, c in zip(
                times, candles.open, candles.high, candles.low, candles.close, strict=True
            )
        ],
        "lines": [
            {"name": "entry", "price": float(signal.entry_price), "tone": "neutral"},
            {"name": "stop", "price": float(signal.stop_loss), "tone": "bad"},
            {"name": "target", "price": float(signal.take_profit), "tone": "good"},
        ],
        "markers": markers,
        "trades": _trade_lines(trades, times, step_s=int(step.total_seconds())),
    }


_RUNNING = (SimulatedTrade.Status.PENDING, SimulatedTrade.Status.OPEN)


def _trades(detail: SignalDetail) -> list[tuple[str, SimulatedTrade]]:
    found: list[tuple[str, SimulatedTrade]] = []
    if detail.paper_trade is not None:
        found.append(("paper", detail.paper_trade))
    if detail.shadow_trade is not None:
        found.append(("shadow", detail.shadow_trade))
    return found


def _on_candle(moment: datetime | None, times: np.ndarray, step_s: int) -> int | None:
    """The open (epoch s) of the stored candle that holds ``moment``, or ``None``."""
    if moment is None:
        return None
    second = ms_from_utc(moment) // 1000
    index = int(np.searchsorted(times, second, side="right")) - 1
    if index < 0 or second >= int(times[index]) + step_s:
        return None
    return int(times[index])


def _markers(
    detail: SignalDetail,
    trades: list[tuple[str, SimulatedTrade]],
    times: np.ndarray,
    step_s: int,
) -> list[dict[str, Any]]:
    signal = detail.signal
    long = signal.side == Side.LONG
    markers: list[dict[str, Any]] = []
    signal_time = _on_candle(signal.candle_time, times, step_s)
    if signal_time is not None:
        blockers = [line.guard for line in detail.decisions if line.blocked]
        if signal.state == SignalState.BLOCKED and blockers:
            text = f"{signal.side} blocked by {', '.join(blockers)}"
            tone = "blocked"
        else:
            text = f"{signal.side} signal"
            tone = "signal"
        markers.append(
            {
                "time": signal_time,
                "position": "belowBar" if long else "aboveBar",
                "shape": "arrowUp" if long else "arrowDown",
                "tone": tone,
                "text": text,
            }
        )
    # Fills: paper and shadow run the same fill model, so an approved signal's two
    # trades usually fill alike; one marker then names both instead of two overlapping.
    fills: dict[tuple[str, int, float], dict[str, Any]] = {}
    for label, trade in trades:
        for kind, moment, price in (
            ("in", trade.entry_time, trade.entry_price),
            ("out", trade.exit_time, trade.exit_price),
        ):
            when = _on_candle(moment, times, step_s)
            if when is None or price is None:
                continue
            key = (kind, when, float(price))
            if key in fills:
                fills[key]["names"].append(label)
                continue
            fills[key] = {
                "names": [label],
                "kind": kind,
                "time": when,
                "price": float(price),
                "reason": trade.get_exit_reason_display() if kind == "out" else "",
                "pnl": trade.pnl,
            }
    for fill in fills.values():
        names = " + ".join(fill["names"])
        if fill["kind"] == "in":
            text = f"{names} entry"
        else:
            text = f"{names} exit: {fill['reason'] or 'closed'}{_outcome(fill['pnl'])}"
        # Coloured by trade, not by outcome: green and red are the candles' own colours,
        # and a marker on a candle of its colour would vanish.
        tone = fill["names"][0]
        markers.append(
            {
                "time": fill["time"],
                "position": "atPriceMiddle",
                "price": fill["price"],
                "shape": "circle" if fill["kind"] == "in" else "square",
                "tone": tone,
                "text": text,
            }
        )
    markers.sort(key=lambda marker: marker["time"])
    return markers


def _outcome(pnl: Decimal | None) -> str:
    if pnl is None or pnl == 0:
        return ""
    return ", won" if pnl > 0 else ", lost"


def _trade_lines(
    trades: list[tuple[str, SimulatedTrade]], times: np.ndarray, step_s: int
) -> list[dict[str, Any]]:
    """Each closed trade as a segment from its entry fill to its exit fill, when they are
    on different candles (a line needs two times); a shadow trade that filled exactly as
    the paper trade is left out (its segment would hide under the paper one)."""
    lines: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for label, trade in trades:
        start = _on_candle(trade.entry_time, times, step_s)
        if start is None or trade.entry_price is None:
            continue
        end = _on_candle(trade.exit_time, times, step_s)
        exit_price = trade.exit_price
        if end is None or end <= start or exit_price is None:
            continue
        points = (start, float(trade.entry_price), end, float(exit_price))
        if points in seen:
            continue
        seen.add(points)
        lines.append(
            {
                "name": label,
                "points": [[start, points[1]], [end, points[3]]],
                "tone": label,
            }
        )
    return lines
