"""Textbook EMA and Wilder ATR against values worked out by hand, and resumable in chunks
exactly like one pass over the whole series (no database)."""

import json
import math
import random
from itertools import pairwise

import numpy as np
import pytest

from signals.domain.indicators import ema, wilder_atr

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


@pytest.mark.parametrize("count", [0, 1, 2, 3, 20])
def test_the_state_is_plain_json_even_before_the_values_exist(count):
    high, low, close = random_candles(count, 5)
    _, ema_state = ema(close, 10)
    _, atr_state = wilder_atr(high, low, close, 10)
    for state in (ema_state, atr_state):
        text = json.dumps(state, allow_nan=False)
        assert json.loads(text) == state
        assert not any(isinstance(v, float) and math.isnan(v) for v in state.values())
