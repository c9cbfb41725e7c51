"""Every book guard on a short real series, through the real engine (no database).

The guard tests beside this one check each guard at, just below and just above its
threshold on hand-made snapshots. Here each guard that looks at the book, or at the
proposal, runs alone (so no other guard's decisions move its inputs) in ``engine.run``
over the first 400 hourly Coinbase BTC/USD candles (2017-07-01 11:00 to 2017-07-18 02:00
UTC, no gap) with an EMA(3)/EMA(8) crossover: 39 signals, 16 of them stopped out when
nothing is blocked. For every signal the test recomputes the value the guard should have
observed, the plainest way, from the run's own outputs only: the signals' decision times
(``decided_at``), their proposals' prices, and the paper trades' results and the moment
their exits became known (``closed_at``). It asserts that value is the verdict's, that
pass or block follows the threshold rule, and that the guard both blocks and passes on
this series. Each test also pins one signal checked by hand, written out in a comment.

The guards with a release rule (``stop_minutes``) get a stop duration longer than the
series wherever their default would release within it: here each checks what the guard
observes; how it lets go is checked in ``test_guard_release.py``.

Times in the comments are UTC. A signal (and its paper trade) is named by its decision
time, the close of its candle; "known" is when a paper trade's exit became known.
"""

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from markets.bars import CandleArrays
from markets.timestamps import utc_from_ms
from signals.domain import engine
from signals.domain.fills import FillCosts, TradeResult
from signals.domain.guards import (
    CooldownAfterClose,
    CooldownAfterStop,
    DailyLossLimit,
    DuplicatePosition,
    Guard,
    LowProfitMarkets,
    MaxDrawdown,
    MaxOpenPerSymbol,
    MaxOpenPositions,
    MinRewardRisk,
    StoplossGuard,
    Verdict,
)
from signals.domain.strategies import BollingerReversion, EmaCrossover, Proposal, Strategy

pytestmark = pytest.mark.shared_data

CSV = "data/candles/coinbase/Coinbase_BTCUSD_1h.normalized.csv"
ROWS = 400
MARKET = engine.Market("coinbase", "BTC/USD", "1h")
COSTS = FillCosts(5.0, 0.0026, 1000.0)
EMA = EmaCrossover(fast=3, slow=8, max_hold=12)
MINUTE = 60_000
STOP_OUTS = ("stop", "gap")
PAST_THE_SERIES = 10**7  # minutes (19 years): a stop duration that never ends here


@pytest.fixture
def candles(shared_dir) -> CandleArrays:
    with (shared_dir / CSV).open() as lines:
        rows = [row for _, row in zip(range(ROWS), csv.DictReader(lines), strict=False)]
    return CandleArrays.from_rows(
        [
            [
                float(row[name])
                for name in ("timestamp_ms", "open", "high", "low", "close", "volume")
            ]
            for row in rows
        ]
    )


@dataclass(frozen=True)
class Decision:
    """One signal of the run as the test reads it: when it was decided (ms), its proposal,
    the guard's verdict, whether it was approved, and for an approved one its paper
    trade's result and when that trade's exit became known (``None``: never, in this run).
    """

    at: int
    proposal: Proposal
    verdict: Verdict
    approved: bool
    known_at: int | None
    result: TradeResult | None


def run_alone(candles: CandleArrays, guard: Guard, strategy: Strategy = EMA) -> list[Decision]:
    """The signals of ``strategy`` on the candles with ``guard`` as the book's only guard."""
    config = engine.EngineConfig(
        strategies=(engine.StrategySpec("strategy", MARKET, strategy),),
        guards=(engine.GuardSpec("guard", guard),),
        costs=COSTS,
    )
    result = engine.run(config, engine.EngineState(), {MARKET.key: candles})
    paper = {trade.key: trade for trade in result.trades if trade.kind == "paper"}
    decisions = []
    for signal in result.signals:
        # Every signal reached the guards and was decided, and only the approved ones
        # traded on paper: nothing was rejected, expired or failed on this series.
        assert signal.state in (engine.BLOCKED, engine.CLOSED, engine.EXECUTED, engine.APPROVED)
        ((_, verdict),) = signal.verdicts
        approved = signal.state != engine.BLOCKED
        trade = paper.get(signal.key)
        assert (trade is not None) is approved or signal.state == engine.APPROVED
        decisions.append(
            Decision(
                at=signal.decided_at,
                proposal=signal.proposal,
                verdict=verdict,
                approved=approved,
                known_at=trade.closed_at if trade else None,
                result=trade.result if trade else None,
            )
        )
    assert [d.at for d in decisions] == sorted({d.at for d in decisions})
    return decisions


def ms(text: str) -> int:
    """Epoch ms of a UTC time written ``2017-07-03 08:00``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1000


def iso(moment_ms: int) -> str:
    return datetime.fromtimestamp(moment_ms // 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def day(moment_ms: int):
    return datetime.fromtimestamp(moment_ms // 1000, tz=UTC).date()


def at(decisions: list[Decision], text: str) -> Decision:
    (decision,) = [d for d in decisions if d.at == ms(text)]
    return decision


def open_at(decisions: list[Decision], now: int) -> list[Decision]:
    """Approved signals decided before ``now`` whose exit was not yet known at ``now``."""
    return [
        d
        for d in decisions
        if d.approved and d.at < now and (d.known_at is None or d.known_at > now)
    ]


def closed_by(decisions: list[Decision], now: int) -> list[Decision]:
    """Approved signals whose exit was known at or before ``now``, in the order the exits
    became known (a tie in the order the signals were decided)."""
    closed = [d for d in decisions if d.known_at is not None and d.known_at <= now]
    return sorted(closed, key=lambda d: d.known_at)


def check_every_signal(
    decisions: list[Decision],
    guard: Guard,
    threshold: float,
    expected: Callable[[Decision], float | None],
    blocks: Callable[[float], bool],
) -> None:
    """Each verdict observed ``expected(signal)`` and blocked exactly when ``blocks`` says
    (nothing observed passes); the guard blocked at least once and passed at least once
    on something it observed."""
    for d in decisions:
        value = expected(d)
        when = f"signal on {iso(d.at)}"
        verdict = d.verdict
        assert verdict.threshold == threshold, when
        if value is None:
            assert verdict.observed is None, when
        else:
            assert verdict.observed == pytest.approx(value, rel=1e-12, abs=1e-9), when
        assert verdict.passed is (value is None or not blocks(value)), when
    assert any(not d.verdict.passed for d in decisions), f"{guard} never blocks"
    assert any(d.verdict.passed and d.verdict.observed is not None for d in decisions), (
        f"{guard} never passes a signal it observed something for"
    )


def test_the_series_makes_a_few_dozen_signals_and_some_stop_outs(candles):
    # Without a guard that blocks: the series the tests below are about.
    decisions = run_alone(candles, MaxOpenPositions(max_open=100))
    exits = [d.result.exit_reason for d in decisions if d.result]
    assert len(decisions) == 39
    assert len(exits) == 39
    assert sum(reason in STOP_OUTS for reason in exits) == 16


def test_max_open_positions(candles):
    guard = MaxOpenPositions(max_open=2)
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == ">="
    check_every_signal(
        decisions,
        guard,
        2.0,
        lambda d: len(open_at(decisions, d.at)),
        lambda observed: observed >= 2,
    )
    # By hand: signal on 2017-07-03 08:00: the short of 03:00 (known 14:00) and the long
    # of 07:00 (known 14:00) are open → 2 >= 2 → block. Signal on 2017-07-06 10:00: the
    # long of 09:00 stopped out, known at 10:00, so no longer open; the short of 06:00
    # (known 18:00) is → 1 < 2 → pass.
    assert at(decisions, "2017-07-03 08:00").verdict.observed == 2.0
    assert not at(decisions, "2017-07-03 08:00").verdict.passed
    assert at(decisions, "2017-07-06 10:00").verdict.observed == 1.0
    assert at(decisions, "2017-07-06 10:00").verdict.passed


def test_max_open_per_symbol(candles):
    # One market: every open position is on BTC/USD.
    guard = MaxOpenPerSymbol(max_open=1)
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == ">="
    check_every_signal(
        decisions,
        guard,
        1.0,
        lambda d: len(open_at(decisions, d.at)),
        lambda observed: observed >= 1,
    )
    # By hand: signal on 2017-07-03 07:00: the short of 03:00 is open until 14:00 → 1 >= 1
    # → block. Signal on 2017-07-04 11:00: the short of 03:00 was the last approved, known
    # 2017-07-03 14:00 → 0 < 1 → pass.
    assert at(decisions, "2017-07-03 07:00").verdict.observed == 1.0
    assert not at(decisions, "2017-07-03 07:00").verdict.passed
    assert at(decisions, "2017-07-04 11:00").verdict.observed == 0.0
    assert at(decisions, "2017-07-04 11:00").verdict.passed


def test_duplicate_position(candles):
    guard = DuplicatePosition()
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == ">="
    check_every_signal(
        decisions,
        guard,
        1.0,
        lambda d: sum(o.proposal.side == d.proposal.side for o in open_at(decisions, d.at)),
        lambda observed: observed >= 1,
    )
    # By hand: signal long on 2017-07-08 19:00: the long of 09:00 times out, known 21:00,
    # so still open → 1 >= 1 → block. The short on 2017-07-08 18:00 before it: the short
    # of 08:00 stopped out, known 13:00; the long of 09:00 is open but on the other side
    # → 0 < 1 → pass.
    assert at(decisions, "2017-07-08 19:00").verdict.observed == 1.0
    assert not at(decisions, "2017-07-08 19:00").verdict.passed
    assert at(decisions, "2017-07-08 18:00").verdict.observed == 0.0
    assert at(decisions, "2017-07-08 18:00").verdict.passed


def test_cooldown_after_stop(candles):
    guard = CooldownAfterStop(minutes=240)
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == "<"

    def minutes_since_stop_out(d: Decision) -> float | None:
        stops = [
            c.known_at for c in closed_by(decisions, d.at) if c.result.exit_reason in STOP_OUTS
        ]
        return (d.at - max(stops)) / MINUTE if stops else None

    check_every_signal(
        decisions, guard, 240.0, minutes_since_stop_out, lambda observed: observed < 240
    )
    # By hand: signal on 2017-07-16 23:00: the long of 17:00 stopped out, known
    # 2017-07-16 20:00 → 180 minutes < 240 → block. Signal on 2017-07-04 23:00: the last
    # stop-out, the long of 12:00, known 2017-07-04 16:00 → 420 minutes >= 240 → pass.
    assert at(decisions, "2017-07-16 23:00").verdict.observed == 180.0
    assert not at(decisions, "2017-07-16 23:00").verdict.passed
    assert at(decisions, "2017-07-04 23:00").verdict.observed == 420.0
    assert at(decisions, "2017-07-04 23:00").verdict.passed


def test_cooldown_after_close(candles):
    guard = CooldownAfterClose(minutes=120)
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == "<"

    def minutes_since_close(d: Decision) -> float | None:
        closes = [c.known_at for c in closed_by(decisions, d.at)]
        return (d.at - max(closes)) / MINUTE if closes else None

    check_every_signal(
        decisions, guard, 120.0, minutes_since_close, lambda observed: observed < 120
    )
    # By hand: signal on 2017-07-05 01:00: the last close, the short of 2017-07-04 11:00
    # timing out, known 2017-07-04 23:00 → exactly 120 minutes, not < 120 → pass. Signal on
    # 2017-07-05 14:00: that short of 01:00 timed out, known 13:00 → 60 < 120 → block.
    assert at(decisions, "2017-07-05 01:00").verdict.observed == 120.0
    assert at(decisions, "2017-07-05 01:00").verdict.passed
    assert at(decisions, "2017-07-05 14:00").verdict.observed == 60.0
    assert not at(decisions, "2017-07-05 14:00").verdict.passed


def stop_outs_within(decisions: list[Decision], now: int, lookback_minutes: int) -> int:
    """Paper trades stopped out (stop or gap) whose exit became known in (now - lookback, now]."""
    since = now - lookback_minutes * MINUTE
    return sum(
        c.result.exit_reason in STOP_OUTS and c.known_at > since for c in closed_by(decisions, now)
    )


def test_stoploss_guard_on_the_book(candles):
    guard = StoplossGuard(stop_outs=2, lookback_minutes=1440, scope="book")
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == ">="
    check_every_signal(
        decisions,
        guard,
        2.0,
        lambda d: stop_outs_within(decisions, d.at, 1440),
        lambda observed: observed >= 2,
    )
    # By hand: signal on 2017-07-04 11:00, looking back to 2017-07-03 11:00 (excluded):
    # the short of 2017-07-03 08:00 (known 13:00) and the short of 03:00 (known 14:00)
    # were stopped out → 2 >= 2 → block. Signal on 2017-07-04 16:00, back to 2017-07-03
    # 16:00: both fell out of the window, and no trade was approved since → 0 < 2 → pass.
    assert at(decisions, "2017-07-04 11:00").verdict.observed == 2.0
    assert not at(decisions, "2017-07-04 11:00").verdict.passed
    assert at(decisions, "2017-07-04 16:00").verdict.observed == 0.0
    assert at(decisions, "2017-07-04 16:00").verdict.passed


def test_stoploss_guard_on_the_symbol(candles):
    guard = StoplossGuard(stop_outs=3, lookback_minutes=2880, scope="symbol")
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == ">="
    check_every_signal(
        decisions,
        guard,
        3.0,
        lambda d: stop_outs_within(decisions, d.at, 2880),
        lambda observed: observed >= 3,
    )
    # By hand: signal on 2017-07-04 16:00, looking back to 2017-07-02 16:00 (excluded):
    # stop-outs known 2017-07-03 13:00 (short of 08:00), 2017-07-03 14:00 (short of 03:00)
    # and 2017-07-04 16:00 itself (long of 12:00; known at the decision, so it counts)
    # → 3 >= 3 → block. The signal on 12:00 before it saw only the first two → 2 < 3 → pass.
    assert at(decisions, "2017-07-04 16:00").verdict.observed == 3.0
    assert not at(decisions, "2017-07-04 16:00").verdict.passed
    assert at(decisions, "2017-07-04 12:00").verdict.observed == 2.0
    assert at(decisions, "2017-07-04 12:00").verdict.passed


def test_stoploss_guard_on_the_symbol_counts_every_stop_out_in_a_long_lookback(candles):
    guard = StoplossGuard(
        stop_outs=10, lookback_minutes=43200, scope="symbol", stop_minutes=PAST_THE_SERIES
    )
    decisions = run_alone(candles, guard)
    # By hand: signal on 2017-07-09 08:00: 23 trades closed since 2017-07-02, all within
    # 30 days; 10 were stopped out (known 2017-07-03 13:00 and 14:00, 07-04 16:00, 07-05
    # 05:00 and 18:00, 07-06 10:00, 07-07 07:00, 07-08 07:00, 13:00 and 20:00) → 10 >= 10
    # → block. (When the engine kept only the latest 20 closed trades of a symbol, it
    # left out the first two stop-outs, observed 8 and passed: now it keeps 200.)
    observed = [(iso(d.at), d.verdict.observed, d.verdict.passed) for d in decisions]
    expected = []
    for d in decisions:
        count = stop_outs_within(decisions, d.at, 43200)
        expected.append((iso(d.at), float(count), count < 10))
    assert observed == expected


def test_max_drawdown(candles):
    guard = MaxDrawdown(max_drawdown=50.0, stop_minutes=PAST_THE_SERIES)
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == ">="

    def drawdown(d: Decision) -> float:
        equity = peak = 0.0  # the realised P&L starts at 0, which is its first peak
        for closed in closed_by(decisions, d.at):
            equity += closed.result.pnl
            peak = max(peak, equity)
        return peak - equity

    check_every_signal(decisions, guard, 50.0, drawdown, lambda observed: observed >= 50)
    # By hand: signal on 2017-07-06 20:00. P&L in the order known: 2017-07-02 18:00
    # +16.834994 (the peak, 16.834994); 2017-07-03 13:00 -18.494064; 14:00 -19.998632,
    # +18.028767, +16.738814 (13.109879); 2017-07-04 16:00 -18.638162; 23:00 -6.647887;
    # 2017-07-05 04:00 -1.982305; 05:00 -18.362316; 13:00 +2.844608; 18:00 -16.812016;
    # 23:00 +14.599314, +14.918393; 2017-07-06 10:00 -15.136625; 18:00 -3.906394 →
    # equity -36.013511, peak 16.834994 → drawdown 52.8485 >= 50 → block. Signal on
    # 2017-07-06 10:00: the stop-out known at 10:00 counts, the 18:00 close does not →
    # equity -32.107117 → drawdown 48.9421 < 50 → pass.
    assert at(decisions, "2017-07-06 20:00").verdict.observed == pytest.approx(52.848506, abs=1e-6)
    assert not at(decisions, "2017-07-06 20:00").verdict.passed
    assert at(decisions, "2017-07-06 10:00").verdict.observed == pytest.approx(48.942112, abs=1e-6)
    assert at(decisions, "2017-07-06 10:00").verdict.passed


def test_max_drawdown_with_its_default_stop_releases_and_restarts_its_peak(candles):
    guard = MaxDrawdown(max_drawdown=50.0)
    assert guard.stop_minutes == 1440
    decisions = run_alone(candles, guard)
    since: int | None = None  # the latest release (ms)
    releases = []
    for d in decisions:
        while True:
            every = closed_by(decisions, d.at)
            counted = [c for c in every if since is None or c.known_at > since]
            # The equity at the release (0 before any) is the first peak after it.
            level = peak = sum(c.result.pnl for c in every) - sum(c.result.pnl for c in counted)
            for c in counted:
                level += c.result.pnl
                peak = max(peak, level)
            drawdown = peak - level
            if drawdown < 50 or not counted:
                break
            end = counted[-1].known_at + 1440 * MINUTE  # a day after the latest exit
            if d.at < end:
                break
            since = end
            releases.append((d.at, end))
        verdict = d.verdict
        assert verdict.observed == pytest.approx(drawdown, rel=1e-12, abs=1e-9), iso(d.at)
        assert verdict.passed is (drawdown < 50)
        released = releases and releases[-1][0] == d.at
        assert verdict.released_at == (utc_from_ms(since) if released and since else None)
    # By hand: the signal on 2017-07-06 20:00 blocks (drawdown 52.8485, as above). The
    # long of 10:00, approved before, closes while it blocks (known 22:00, -11.401549):
    # the drawdown moves to 64.250055 (the 2017-07-07 03:00 signal blocks on it) and the
    # lock runs a day from that exit, to 2017-07-07 22:00. No signal comes until
    # 2017-07-08 05:00: it finds the lock run out, the peak restarts at the equity of
    # 22:00 and nothing has closed since → drawdown 0, pass.
    assert releases[0] == (ms("2017-07-08 05:00"), ms("2017-07-07 22:00"))
    assert at(decisions, "2017-07-07 03:00").verdict.observed == pytest.approx(64.250055, abs=1e-6)
    assert at(decisions, "2017-07-08 05:00").verdict.passed
    assert len(releases) >= 2
    assert any(not d.verdict.passed for d in decisions if d.at > releases[0][0])


def test_daily_loss_limit(candles):
    guard = DailyLossLimit(max_loss=30.0)
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == ">="

    def loss_today(d: Decision) -> float:
        today = day(d.at)
        return -sum(c.result.pnl for c in closed_by(decisions, d.at) if day(c.known_at) == today)

    check_every_signal(decisions, guard, 30.0, loss_today, lambda observed: observed >= 30)
    # By hand: signal on 2017-07-08 18:00: closed on 2017-07-08 by then, the long of
    # 05:00 (stop, known 07:00, -18.174447) and the short of 08:00 (stop, known 13:00,
    # -19.145623) → loss 37.320070 >= 30 → block. Signal on 2017-07-12 07:00: only the
    # short of 2017-07-11 18:00 closed that day (target, known 03:00, +38.598683) → loss
    # -38.598683 < 30 → pass.
    assert at(decisions, "2017-07-08 18:00").verdict.observed == pytest.approx(37.320070, abs=1e-6)
    assert not at(decisions, "2017-07-08 18:00").verdict.passed
    assert at(decisions, "2017-07-12 07:00").verdict.observed == pytest.approx(-38.598683, abs=1e-6)
    assert at(decisions, "2017-07-12 07:00").verdict.passed


def test_low_profit_markets(candles):
    guard = LowProfitMarkets(
        lookback_trades=10, min_trades=5, min_profit_pct=-0.3, stop_minutes=PAST_THE_SERIES
    )
    decisions = run_alone(candles, guard)
    assert guard.blocks_when == "<"

    def return_pct(d: Decision) -> float | None:
        last = closed_by(decisions, d.at)[-10:]
        if len(last) < 5:
            return None
        pnl = sum(c.result.pnl for c in last)
        notional = sum(c.result.quantity * c.result.entry_price for c in last)
        return 100 * pnl / notional

    check_every_signal(decisions, guard, -0.3, return_pct, lambda observed: observed < -0.3)
    # By hand: signal on 2017-07-04 11:00: 5 trades closed, +16.834994 -18.494064
    # -19.998632 +18.028767 +16.738814 = +13.109879 on 5 x 1000 → 0.262198% >= -0.3% →
    # pass. Signal on 2017-07-06 20:00: the last 10 of 15 closed are -18.638162 -6.647887
    # -1.982305 -18.362316 +2.844608 -16.812016 +14.599314 +14.918393 -15.136625
    # -3.906394 = -49.123390 on 10 x 1000 → -0.491234% < -0.3% → block.
    assert at(decisions, "2017-07-04 11:00").verdict.observed == pytest.approx(0.262198, abs=1e-6)
    assert at(decisions, "2017-07-04 11:00").verdict.passed
    assert at(decisions, "2017-07-06 20:00").verdict.observed == pytest.approx(-0.491234, abs=1e-6)
    assert not at(decisions, "2017-07-06 20:00").verdict.passed


def reward_risk(d: Decision) -> float:
    p = d.proposal
    return abs(p.take_profit - p.entry_price) / abs(p.entry_price - p.stop_loss)


def test_min_reward_risk(candles):
    # The EMA crossover's target and stop are a fixed 3 and 1.5 ATRs away: its ratio is
    # always 2. A Bollinger reversion targets the middle band, so its ratio varies.
    guard = MinRewardRisk(min_ratio=1.5)
    decisions = run_alone(candles, guard, BollingerReversion(max_hold=12))
    assert guard.blocks_when == "<"
    assert len(decisions) == 25
    check_every_signal(decisions, guard, 1.5, reward_risk, lambda observed: observed < 1.5)
    # By hand: long on 2017-07-16 11:00, entry 1906.61, stop 1842.66735, target
    # 2002.79950: reward 96.18950 / risk 63.94265 = 1.504309 >= 1.5 → pass. Long on
    # 2017-07-16 14:00, entry 1890.96, stop 1808.45170, target 1970.29150: reward 79.33150
    # / risk 82.50830 = 0.961497 < 1.5 → block.
    assert at(decisions, "2017-07-16 11:00").verdict.observed == pytest.approx(1.504309, abs=1e-6)
    assert at(decisions, "2017-07-16 11:00").verdict.passed
    assert at(decisions, "2017-07-16 14:00").verdict.observed == pytest.approx(0.961497, abs=1e-6)
    assert not at(decisions, "2017-07-16 14:00").verdict.passed


def test_min_reward_risk_passes_a_strategy_built_at_the_minimum(candles):
    decisions = run_alone(candles, MinRewardRisk(min_ratio=2.0))
    # By hand: long on 2017-07-04 12:00, ATR 21.767: stop 1.5 ATRs and target 3 ATRs from
    # the close 2614.93 → reward-to-risk 2 >= 2 → pass.
    blocked = [(iso(d.at), d.verdict.observed) for d in decisions if not d.verdict.passed]
    assert blocked == []
