"""The EMA-crossover strategy's vectorised scan, the strategy registry, and the checks
every strategy's own test file (``test_strategy_<kind>.py``) runs on it (no database)."""

import json
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pytest

from markets.bars import CandleArrays
from signals.domain.params import default_params
from signals.domain.strategies import (
    STRATEGIES,
    EmaCrossover,
    Proposal,
    Scan,
    Strategy,
    build_strategy,
    validate_strategy_config,
)
from signals.tests.candles import walk

HOUR = 3_600_000


def series(closes: list[float]) -> CandleArrays:
    """Hourly candles opening at the previous close, one unit of wick on either side."""
    rows, previous = [], closes[0]
    for i, close in enumerate(closes):
        rows.append(
            (i * HOUR, previous, max(previous, close) + 1, min(previous, close) - 1, close, 1)
        )
        previous = close
    return CandleArrays.from_rows(rows)


def random_walk(count: int, seed: int) -> CandleArrays:
    return CandleArrays.from_rows(
        [(i * HOUR, o, h, lo, c, 1.0) for i, (_, o, h, lo, c) in enumerate(walk(count, seed=seed))]
    )


def scan_in_pieces(strategy: Strategy, candles: CandleArrays, cuts: Sequence[int]) -> Scan:
    """One scan per stretch of candles between ``cuts``, each resuming from the state the
    previous one left, passed through JSON as the live driver stores it; the proposals'
    indexes counted from the first candle, like one scan's."""
    index: list[int] = []
    proposals: list[Proposal] = []
    state = None
    for start, end in pairwise([0, *cuts, len(candles)]):
        scan = strategy.scan(candles.head(end).tail(start), state)
        index += [start + i for i in scan.index]
        proposals += scan.proposals
        state = json.loads(json.dumps(scan.state, allow_nan=False))
    return Scan(index=index, proposals=proposals, state=state or {})


def assert_resumes_exactly(strategy: Strategy, candles: CandleArrays, cuts: Sequence[int]) -> None:
    """Split at each of ``cuts`` in turn, then into runs of 7 candles: the same proposals
    (exact floats) on the same candles and the same final state as one scan."""
    whole = strategy.scan(candles, None)
    assert {p.side for p in whole.proposals} == {"long", "short"}
    for cut in cuts:
        assert scan_in_pieces(strategy, candles, [cut]) == whole, f"split at {cut}"
    assert scan_in_pieces(strategy, candles, range(7, len(candles), 7)) == whole


def assert_ignores_the_future(strategy: Strategy, candles: CandleArrays, cut: int) -> None:
    """Every candle after ``cut`` replaced by garbage: the proposals up to ``cut`` stay."""
    rng = np.random.default_rng(0)

    def garbage(column: np.ndarray) -> np.ndarray:
        noise = rng.uniform(1, 100_000, len(column) - cut - 1)
        return np.concatenate((column[: cut + 1], noise))

    high = garbage(candles.high)
    rewritten = CandleArrays(
        candles.time,
        garbage(candles.open),
        high,
        np.minimum(garbage(candles.low), high),
        garbage(candles.close),
        candles.volume,
    )

    def until_cut(scan: Scan) -> list[tuple[int, Proposal]]:
        return [(i, p) for i, p in zip(scan.index, scan.proposals, strict=True) if i <= cut]

    before = until_cut(strategy.scan(candles, None))
    assert before
    assert until_cut(strategy.scan(rewritten, None)) == before


# Twenty candles falling by 1 (100 .. 81), then rising by 3 (84, 87, ...).
FALL_THEN_RISE = [100.0 - i for i in range(20)] + [81.0 + 3 * j for j in range(1, 15)]
# Twenty candles rising by 1 (100 .. 119), then falling by 3 (115, 112, ...).
RISE_THEN_FALL = [100.0 + i for i in range(20)] + [118.0 - 3 * j for j in range(1, 15)]


def test_a_fall_then_a_rise_proposes_one_long_on_the_crossing_candle():
    # On a steady fall of 1 per candle an SMA-seeded EMA of period n lags (n - 1) / 2
    # behind: EMA3 = close + 1, EMA6 = close + 2.5, so at candle 19 (close 81) they are
    # 82 and 83.5. Candle 20 (close 84): EMA3 = (84 + 82) / 2 = 83,
    # EMA6 = 2/7 * 84 + 5/7 * 83.5 = 83.642857: still below. Candle 21 (close 87):
    # EMA3 = 85, EMA6 = 2/7 * 87 + 5/7 * 83.642857 = 84.602041: crossed above.
    # True ranges: 3 on every falling candle (open o, high o + 1, low o - 2), 5 on
    # candles 20 and 21, so ATR3 = 3, then (2 * 3 + 5) / 3 = 11/3, then
    # (2 * 11/3 + 5) / 3 = 37/9 on the crossing candle.
    strategy = EmaCrossover(fast=3, slow=6, atr_period=3, stop_atr=1, target_atr=2, max_hold=5)
    scan = strategy.scan(series(FALL_THEN_RISE), None)

    assert scan.index == [21]
    (long,) = scan.proposals
    atr = 37 / 9
    assert long.side == "long"
    assert long.entry_price == 87.0
    assert long.stop_loss == pytest.approx(87 - 1 * atr, abs=1e-9)
    assert long.take_profit == pytest.approx(87 + 2 * atr, abs=1e-9)
    assert long.max_hold == 5
    assert long.reason == "EMA3 crossed above EMA6; ATR3=4.11111"


def test_a_rise_then_a_fall_proposes_one_short_with_the_stop_above():
    # Mirror image: EMA3 = close - 1, EMA6 = close - 2.5 while rising; at candle 21
    # (close 112) EMA3 = 114.25 < EMA6 = 114.908163. True ranges 3, then 6 and 5:
    # ATR3 = (2 * 3 + 6) / 3 = 4, then (2 * 4 + 5) / 3 = 13/3.
    scan = EmaCrossover(fast=3, slow=6, atr_period=3).scan(series(RISE_THEN_FALL), None)

    assert scan.index == [21]
    (short,) = scan.proposals
    assert short.side == "short"
    assert short.entry_price == 112.0
    assert short.stop_loss == pytest.approx(112 + 1.5 * 13 / 3, abs=1e-9)  # 118.5
    assert short.take_profit == pytest.approx(112 - 3.0 * 13 / 3, abs=1e-9)  # 99
    assert short.max_hold == 24


def test_with_shorts_off_a_downward_cross_proposes_nothing():
    longs_only = EmaCrossover(fast=3, slow=6, atr_period=3, allow_short=False)
    assert longs_only.scan(series(RISE_THEN_FALL), None).proposals == []
    assert longs_only.scan(series(FALL_THEN_RISE), None).index == [21]


def test_on_a_random_walk_longs_and_shorts_alternate_on_the_crossings():
    candles = random_walk(400, seed=3)
    scan = EmaCrossover(fast=5, slow=12, atr_period=5).scan(candles, None)
    sides = [p.side for p in scan.proposals]
    assert len(sides) > 5
    assert all(a != b for a, b in pairwise(sides))
    for i, proposal in zip(scan.index, scan.proposals, strict=True):
        assert proposal.entry_price == candles.close[i]
        if proposal.side == "long":
            assert proposal.stop_loss < proposal.entry_price < proposal.take_profit
        else:
            assert proposal.take_profit < proposal.entry_price < proposal.stop_loss
    assert EmaCrossover(fast=5, slow=12, atr_period=5, allow_short=False).scan(
        candles, None
    ).proposals == [p for p in scan.proposals if p.side == "long"]


def test_nothing_is_proposed_before_the_slow_ema_exists():
    assert EmaCrossover(fast=3, slow=6).scan(series(FALL_THEN_RISE[:6]), None).proposals == []
    # Rising from the start: the fast EMA is above the slow one from the first candle
    # both exist, so there is no crossing to report.
    assert EmaCrossover(fast=3, slow=6).scan(series(RISE_THEN_FALL[:20]), None).proposals == []


def test_nothing_is_proposed_before_the_atr_exists():
    # The crossing on candle 21 comes before ATR25 exists (candle 25), and is not
    # reported later: the fast EMA stays above.
    strategy = EmaCrossover(fast=3, slow=6, atr_period=25)
    assert strategy.scan(series(FALL_THEN_RISE), None).proposals == []


def test_an_empty_scan_proposes_nothing_and_keeps_the_state():
    strategy = EmaCrossover(fast=3, slow=6, atr_period=3)
    state = strategy.scan(series(FALL_THEN_RISE[:10]), None).state
    empty = strategy.scan(CandleArrays.from_rows([]), state)
    assert (empty.index, empty.proposals, empty.state) == ([], [], state)


@pytest.mark.parametrize("k", [0, 1, 5, 11, 12, 13, 50, 137, 200, 299, 300])
def test_a_resumed_scan_equals_one_scan_of_all_candles(k):
    candles = random_walk(300, seed=7)
    strategy = EmaCrossover(fast=5, slow=12, atr_period=14)
    whole = strategy.scan(candles, None)

    first = strategy.scan(candles.head(k), None)
    # The live driver keeps the state as JSON between runs.
    carried = json.loads(json.dumps(first.state, allow_nan=False))
    second = strategy.scan(candles.tail(k), carried)

    assert [*first.index, *(k + i for i in second.index)] == whole.index
    assert [*first.proposals, *second.proposals] == whole.proposals  # exact floats
    assert second.state == whole.state


def test_a_scan_in_many_small_runs_equals_one_scan():
    candles = random_walk(250, seed=9)
    strategy = EmaCrossover(fast=4, slow=9, atr_period=6)
    whole = strategy.scan(candles, None)
    index: list[int] = []
    proposals: list[Proposal] = []
    state = None
    for start in range(0, len(candles), 7):
        scan = strategy.scan(candles.head(start + 7).tail(start), state)
        index += [start + i for i in scan.index]
        proposals += scan.proposals
        state = scan.state
    assert (index, proposals, state) == (whole.index, whole.proposals, whole.state)


def test_a_proposal_uses_no_candle_after_its_own():
    candles = random_walk(300, seed=11)
    strategy = EmaCrossover(fast=5, slow=12, atr_period=5)
    whole = strategy.scan(candles, None)
    # The same history with every candle after candle 150 replaced by garbage.
    cut = 150
    rng = np.random.default_rng(0)

    def garbage(column: np.ndarray) -> np.ndarray:
        noise = rng.uniform(1, 100_000, len(column) - cut - 1)
        return np.concatenate((column[: cut + 1], noise))

    high = garbage(candles.high)
    rewritten = CandleArrays(
        candles.time,
        garbage(candles.open),
        high,
        np.minimum(garbage(candles.low), high),
        garbage(candles.close),
        candles.volume,
    )
    other = strategy.scan(rewritten, None)
    before = [(i, p) for i, p in zip(whole.index, whole.proposals, strict=True) if i <= cut]
    assert before
    assert [(i, p) for i, p in zip(other.index, other.proposals, strict=True) if i <= cut] == before


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("nope", {}, "unknown strategy kind 'nope'"),
        ("ema_crossover", {"fast": 30, "slow": 10}, "fast < slow"),
        ("ema_crossover", {"speed": 1}, "unknown parameter"),
        ("ema_crossover", {"fast": "12"}, "must be int"),
        ("ema_crossover", {"fast": 5.0}, "must be int"),
        ("ema_crossover", {"allow_short": 0}, "must be bool"),
        ("ema_crossover", {"stop_atr": -1}, "positive"),
        ("ema_crossover", {"max_hold": 0}, "max_hold >= 1"),
        ("ema_crossover", [], "JSON object"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(kind, params, message):
    with pytest.raises(ValueError, match=message):
        build_strategy(kind, params)


def test_the_registry_builds_the_strategy_with_its_parameters():
    strategy = build_strategy("ema_crossover", {"fast": 5, "slow": 10, "stop_atr": 2})
    assert strategy == EmaCrossover(fast=5, slow=10, stop_atr=2.0)
    assert build_strategy("ema_crossover", {}) == EmaCrossover()


def test_the_shared_checks_hold_for_the_ema_crossover():
    strategy = EmaCrossover(fast=5, slow=12, atr_period=14)
    candles = random_walk(300, seed=7)
    assert_resumes_exactly(strategy, candles, [0, 1, 11, 12, 13, 14, 15, 150, 299, 300])
    assert_ignores_the_future(strategy, candles, 150)


# --- every registered strategy ---------------------------------------------------------


def test_an_unknown_kind_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="known: ") as refused:
        build_strategy("nope", {})
    assert all(kind in str(refused.value) for kind in STRATEGIES)


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_every_kind_builds_from_its_name_with_or_without_its_defaults(kind):
    cls = STRATEGIES[kind]
    assert cls.kind == kind
    assert build_strategy(kind, {}) == cls()
    assert build_strategy(kind, default_params(cls)) == cls()
    validate_strategy_config(kind, {})


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_every_kind_refuses_an_unknown_parameter_and_a_wrong_type(kind):
    with pytest.raises(ValueError, match="unknown parameter"):
        build_strategy(kind, {"speed": 1})
    with pytest.raises(ValueError, match="parameter max_hold must be int"):
        build_strategy(kind, {"max_hold": "24"})


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_every_kind_with_its_defaults_proposes_both_sides_and_resumes_exactly(kind):
    # With its defaults, on a long random walk: a new strategy is checked from its first
    # line in STRATEGIES, before its own tests exist.
    strategy = STRATEGIES[kind]()
    candles = random_walk(2000, seed=5)
    whole = strategy.scan(candles, None)
    for i, proposal in zip(whole.index, whole.proposals, strict=True):
        assert proposal.entry_price == candles.close[i]
        if proposal.side == "long":
            assert proposal.stop_loss < proposal.entry_price < proposal.take_profit
        else:
            assert proposal.take_profit < proposal.entry_price < proposal.stop_loss
        assert proposal.max_hold == strategy.max_hold
        assert proposal.reason
    assert_resumes_exactly(strategy, candles, [0, 1, 14, 15, 20, 21, 26, 33, 34, 35, 1000, 2000])
    assert_ignores_the_future(strategy, candles, 1000)


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_every_kind_keeps_its_state_over_an_empty_scan(kind):
    strategy = STRATEGIES[kind]()
    state = strategy.scan(random_walk(50, seed=2), None).state
    assert json.loads(json.dumps(state, allow_nan=False)) == state
    empty = strategy.scan(CandleArrays.from_rows([]), state)
    assert (empty.index, empty.proposals, empty.state) == ([], [], state)


def test_ema_crossover_refuses_a_stop_or_target_that_is_not_a_finite_number():
    from signals.domain.strategies import build_strategy

    for params in ({"stop_atr": float("nan")}, {"target_atr": float("inf")}):
        with pytest.raises(ValueError, match="positive, finite stop_atr and target_atr"):
            build_strategy("ema_crossover", params)
