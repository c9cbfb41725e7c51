"""The indicators against values worked out by hand, and resumable in chunks exactly like
one pass over the whole series (no database). ``test_indicator_reference.py`` checks
them against the ``ta`` library."""

import json
import math
import random
from itertools import pairwise

import numpy as np
import pytest

from signals.domain.indicators import (
    donchian,
    ema,
    macd,
    rolling_mean_std,
    wilder_atr,
    wilder_rsi,
)

# Five candles: (high, low, close). True ranges, from the second candle on (the first
# has no previous close):
#   1: max(12 - 9, |12 - 10|, |9 - 10|)   = 3
#   2: max(13 - 11, |13 - 11|, |11 - 11|) = 2
#   3: max(11 - 7, |11 - 12|, |7 - 12|)   = 5   (a gap down: the low far from the close)
#   4: max(10 - 9, |10 - 8|, |9 - 8|)     = 2   (a gap up: the high far from the close)
#   5: max(12 - 11, |12 - 9|, |11 - 9|)   = 3
CANDLES = [
    (11.0, 9.0, 10.0),
    (12.0, 9.0, 11.0),
    (13.0, 11.0, 12.0),
    (11.0, 7.0, 8.0),
    (10.0, 9.0, 9.0),
    (12.0, 11.0, 11.5),
]


def columns(candles):
    table = np.array(candles, dtype=np.float64).reshape(-1, 3)
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy()


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal element by element, NaN where the other is NaN, bit for bit otherwise."""
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def test_ema_is_undefined_until_period_values_then_seeded_with_their_mean():
    values = np.array([10.0, 12.0, 11.0, 13.0, 15.0, 9.0, 14.0])
    out, _ = ema(values, 4)

    alpha = 2 / (4 + 1)  # 0.4
    seed = (10 + 12 + 11 + 13) / 4  # 11.5
    fifth = alpha * 15 + (1 - alpha) * seed  # 12.9
    sixth = alpha * 9 + (1 - alpha) * fifth  # 11.34
    seventh = alpha * 14 + (1 - alpha) * sixth  # 12.404
    assert np.isnan(out[:3]).all()
    assert out[3:].tolist() == pytest.approx([seed, fifth, sixth, seventh], abs=1e-12)
    assert out[3:].tolist() == pytest.approx([11.5, 12.9, 11.34, 12.404], abs=1e-12)


def test_ema_of_period_one_is_the_series_itself():
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    out, _ = ema(values, 1)
    assert out.tolist() == values.tolist()


def test_atr_starts_with_the_mean_of_the_first_true_ranges_then_wilder_smooths():
    high, low, close = columns(CANDLES)
    out, state = wilder_atr(high, low, close, 3)

    first = (3 + 2 + 5) / 3  # the first three true ranges: the first candle has none
    second = (first * 2 + 2) / 3
    third = (second * 2 + 3) / 3
    assert np.isnan(out[:3]).all()
    assert out[3:].tolist() == pytest.approx([first, second, third], abs=1e-12)
    assert out[3:].tolist() == pytest.approx([10 / 3, 26 / 9, 79 / 27], abs=1e-12)
    assert state["previous_close"] == 11.5
    assert state["seen"] == 3


def test_atr_of_a_single_candle_is_undefined():
    high, low, close = columns(CANDLES[:1])
    out, state = wilder_atr(high, low, close, 1)
    assert np.isnan(out).all()
    assert state == {"previous_close": 10.0, "seen": 0, "total": 0.0, "value": None}


def test_atr_of_period_one_is_the_true_range():
    high, low, close = columns(CANDLES)
    out, _ = wilder_atr(high, low, close, 1)
    assert np.isnan(out[0])
    assert out[1:].tolist() == [3.0, 2.0, 5.0, 2.0, 3.0]


def random_candles(count: int, seed: int):
    rng = random.Random(seed)
    price, rows = 100.0, []
    for _ in range(count):
        open_ = price
        price *= 1 + rng.gauss(0, 0.02)
        rows.append(
            (
                max(open_, price) * (1 + abs(rng.gauss(0, 0.01))),
                min(open_, price) * (1 - abs(rng.gauss(0, 0.01))),
                price,
            )
        )
    return columns(rows)


def chunk_bounds(count: int, seed: int) -> list[int]:
    """Random cut points (empty chunks and single candles included), 0 and ``count`` at
    the ends."""
    rng = random.Random(seed)
    cuts = sorted(rng.randrange(count + 1) for _ in range(12))
    return [0, *cuts, cuts[-1], count]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ema_in_chunks_equals_one_pass_exactly(seed):
    _, _, close = random_candles(80, seed)
    whole, whole_state = ema(close, 9)
    parts, state = [], None
    bounds = chunk_bounds(len(close), seed)
    for start, end in pairwise(bounds):
        out, state = ema(close[start:end], 9, state)
        # What the live driver does between runs: the state goes through JSON.
        state = json.loads(json.dumps(state, allow_nan=False))
        parts.append(out)
    assert same(np.concatenate(parts), whole)
    assert state == whole_state


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_atr_in_chunks_equals_one_pass_exactly(seed):
    high, low, close = random_candles(80, seed)
    whole, whole_state = wilder_atr(high, low, close, 14)
    parts, state = [], None
    bounds = chunk_bounds(len(close), seed)
    for start, end in pairwise(bounds):
        out, state = wilder_atr(high[start:end], low[start:end], close[start:end], 14, state)
        state = json.loads(json.dumps(state, allow_nan=False))
        parts.append(out)
    assert same(np.concatenate(parts), whole)
    assert state == whole_state


def test_one_candle_at_a_time_equals_one_pass_exactly():
    high, low, close = random_candles(40, 7)
    whole_ema, _ = ema(close, 5)
    whole_atr, _ = wilder_atr(high, low, close, 5)
    ema_state = atr_state = None
    ema_out, atr_out = [], []
    for i in range(len(close)):
        value, ema_state = ema(close[i : i + 1], 5, ema_state)
        ema_out.append(value)
        value, atr_state = wilder_atr(
            high[i : i + 1], low[i : i + 1], close[i : i + 1], 5, atr_state
        )
        atr_out.append(value)
    assert same(np.concatenate(ema_out), whole_ema)
    assert same(np.concatenate(atr_out), whole_atr)


def test_rsi_starts_with_the_mean_gain_and_loss_then_wilder_smooths():
    # Changes: +1, -0.5, +1.5, -1, +0.5.
    close = np.array([10.0, 11.0, 10.5, 12.0, 11.0, 11.5])
    out, state = wilder_rsi(close, 3)

    gain, loss = (1 + 0 + 1.5) / 3, (0 + 0.5 + 0) / 3
    first = 100 * gain / (gain + loss)  # 83.33
    gain, loss = (gain * 2 + 0) / 3, (loss * 2 + 1) / 3  # 5/9, 4/9
    second = 100 * gain / (gain + loss)  # 55.56
    gain, loss = (gain * 2 + 0.5) / 3, (loss * 2 + 0) / 3  # 14.5/27, 8/27
    third = 100 * gain / (gain + loss)  # 64.44
    assert np.isnan(out[:3]).all()
    assert out[3:].tolist() == pytest.approx([first, second, third], abs=1e-12)
    assert out[3:].tolist() == pytest.approx([250 / 3, 500 / 9, 1450 / 22.5], abs=1e-12)
    assert state["previous_close"] == 11.5
    assert state["gain"] == pytest.approx(14.5 / 27, abs=1e-15)


def test_rsi_is_100_without_losses_and_50_without_any_move():
    rising, _ = wilder_rsi(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    flat, _ = wilder_rsi(np.array([5.0, 5.0, 5.0, 5.0]), 2)
    falling, _ = wilder_rsi(np.array([4.0, 3.0, 2.0, 1.0]), 2)
    assert rising[2:].tolist() == [100.0, 100.0]
    assert flat[2:].tolist() == [50.0, 50.0]
    assert falling[2:].tolist() == [0.0, 0.0]


def test_the_rolling_mean_and_population_deviation_of_a_textbook_window():
    values = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0, 1.0])
    mean, std, state = rolling_mean_std(values, 8)
    assert np.isnan(mean[:7]).all() and np.isnan(std[:7]).all()
    assert mean[7:].tolist() == [5.0, 4.875]
    assert std[7] == 2.0  # the textbook example: population deviation (ddof 0)
    assert std[8] == pytest.approx(np.std(values[1:]), abs=1e-15)
    assert state == {"window": [4.0, 4.0, 5.0, 5.0, 7.0, 9.0, 1.0]}


def test_a_flat_window_has_no_deviation_at_all():
    # A running variance (add the newest value, remove the oldest) leaves rounding dust
    # here; ours sums every window afresh.
    values = np.array([6556.25 * (1 + 0.013 * np.sin(i)) for i in range(40)] + [6556.25] * 5)
    _, std, _ = rolling_mean_std(values, 5)
    assert std[-1] == 0.0


def test_the_donchian_channel_of_a_candle_is_the_range_of_the_candles_before_it():
    high = np.array([5.0, 7.0, 6.0, 3.0, 4.0])
    low = np.array([1.0, 2.0, 0.0, 2.0, 3.0])
    upper, lower, state = donchian(high, low, 2)
    assert np.isnan(upper[:2]).all() and np.isnan(lower[:2]).all()
    assert upper[2:].tolist() == [7.0, 7.0, 6.0]
    assert lower[2:].tolist() == [1.0, 0.0, 0.0]
    assert state == {"highs": [3.0, 4.0], "lows": [2.0, 3.0]}


def test_macd_is_the_fast_ema_less_the_slow_one_with_its_own_ema_as_signal():
    # On a steady rise of 1 an SMA-seeded EMA of period n lags (n - 1) / 2 behind:
    # EMA2 = close - 0.5, EMA3 = close - 1, so the line is 0.5 from candle 2 (the slow
    # EMA's first) and its EMA2 is 0.5 from candle 3.
    close = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    line, signal, _ = macd(close, 2, 3, 2)
    assert np.isnan(line[:2]).all()
    assert line[2:].tolist() == [0.5, 0.5, 0.5, 0.5]
    assert np.isnan(signal[:3]).all()
    assert signal[3:].tolist() == [0.5, 0.5, 0.5]


def rsi_only(high, low, close, state):
    return wilder_rsi(close, 5, state)


def bands(high, low, close, state):
    return rolling_mean_std(close, 7, state)


def channel(high, low, close, state):
    return donchian(high, low, 6, state)


def macd_lines(high, low, close, state):
    return macd(close, 3, 8, 4, state)


RESUMABLE = [rsi_only, bands, channel, macd_lines]


@pytest.mark.parametrize("indicator", RESUMABLE)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_indicator_in_chunks_equals_one_pass_exactly(indicator, seed):
    high, low, close = random_candles(80, seed)
    *whole, whole_state = indicator(high, low, close, None)
    parts: list[list[np.ndarray]] = [[] for _ in whole]
    state = None
    for start, end in pairwise(chunk_bounds(len(close), seed)):
        *outs, state = indicator(high[start:end], low[start:end], close[start:end], state)
        state = json.loads(json.dumps(state, allow_nan=False))
        for part, out in zip(parts, outs, strict=True):
            part.append(out)
    for part, out in zip(parts, whole, strict=True):
        assert same(np.concatenate(part), out)
    assert state == whole_state


@pytest.mark.parametrize("indicator", RESUMABLE)
def test_every_indicator_one_candle_at_a_time_equals_one_pass_exactly(indicator):
    high, low, close = random_candles(40, 7)
    *whole, _ = indicator(high, low, close, None)
    parts: list[list[np.ndarray]] = [[] for _ in whole]
    state = None
    for i in range(len(close)):
        *outs, state = indicator(high[i : i + 1], low[i : i + 1], close[i : i + 1], state)
        for part, out in zip(parts, outs, strict=True):
            part.append(out)
    for part, out in zip(parts, whole, strict=True):
        assert same(np.concatenate(part), out)


def plain_json(state) -> bool:
    """No NaN anywhere, however deep, and the same after a trip through JSON."""

    def floats(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from floats(item)
        elif isinstance(value, list):
            for item in value:
                yield from floats(item)
        elif isinstance(value, float):
            yield value

    text = json.dumps(state, allow_nan=False)
    return json.loads(text) == state and not any(math.isnan(v) for v in floats(state))


@pytest.mark.parametrize("count", [0, 1, 2, 3, 20])
def test_the_state_is_plain_json_even_before_the_values_exist(count):
    high, low, close = random_candles(count, 5)
    _, ema_state = ema(close, 10)
    _, atr_state = wilder_atr(high, low, close, 10)
    states = [ema_state, atr_state]
    states += [indicator(high, low, close, None)[-1] for indicator in RESUMABLE]
    assert all(plain_json(state) for state in states)
