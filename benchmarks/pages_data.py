"""A large, realistic book for the page benchmark, written straight into the database.

``generate(signals=N)`` fills one replay book with ``N`` signals from 20 strategy
configurations over 5 markets (15-minute candles over a year or more), decided by 10
guard configurations: about 40 % pass every guard (then paper-traded), 55 % are
blocked by at least one guard, 5 % are rejected. Every decided signal (passed or
blocked) has one ``GuardDecision`` per guard, with an observed value and a threshold
in the guard kind's unit, and one ``ShadowTrade``; every passed signal that filled has
a ``PaperTrade`` whose outcome equals its control shadow trade's. Outcomes follow the
fill model's shape: stop-outs, targets, timeouts and gaps, P&L in USD on a 1,000 USD
notional with fees, exits spread over the whole span, trades still open at the book's
clock. Each guard's blocked signals lean towards losses or wins by a bias of its own,
so some guards save money and others cost money.

Everything is random from ``seed`` (numpy), so a size and a seed give the same book.
Rows go in with PostgreSQL's ``COPY`` (psycopg 3, as ``shadow.persistence.BookWriter``
writes a replay), primary keys reserved from the sequences first; on SQLite (tests only)
through ``executemany``. Then the book's rollups (``shadow.rollups``, what the pages
read) are built by ``shadow.rollups.rebuild`` from the rows just written, as
``manage.py rollups_rebuild`` builds them, so the benchmark measures what production
serves; on PostgreSQL the written tables are analysed first (as autovacuum would), so
the rebuild's plans are those of a book in service. Both are timed (``Generated``).
Runs inside Django, in the caller's transaction.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

# 2: the book has its rollups (shadow.rollups.rebuild); 3: wall-clock times as a live book's
VERSION = 3
BOOK_NAME = "bench pages"
EXCHANGE = "bench"
TIMEFRAME = "15m"
STEP = np.timedelta64(15, "m")
NOTIONAL = 1000.0
FEE_RATE = 0.001
END = np.datetime64("2024-06-30T00:00", "m")
MARKETS = {
    "BTC/USD": 60000.0,
    "ETH/USD": 3000.0,
    "SOL/USD": 140.0,
    "XRP/USD": 0.52,
    "ADA/USD": 0.45,
}
STRATEGY_KINDS = (
    "ema_crossover",
    "macd_crossover",
    "donchian_breakout",
    "bollinger_reversion",
    "rsi_reversion",
)
STRATEGIES = 20
CHUNK = 50_000  # signals per COPY batch: bounds memory at any size


@dataclass(frozen=True)
class GuardSpec:
    """A guard configuration of the benchmark book and how its observed values fall."""

    name: str
    kind: str
    params: dict[str, Any]
    threshold: float
    blocks_when: str  # ">=", ">" or "<"
    passing: tuple[float, float]  # observed range when it passes
    blocking: tuple[float, float]  # observed range when it blocks
    integer: bool
    weight: float  # share of the blocked signals it blocks first
    bias: float  # extra stop-out probability of what it blocks (negative: more winners)


GUARD_SPECS = (
    GuardSpec("max open positions", "max_open_positions", {"max_open": 8}, 8, ">=",
              (0, 7), (8, 10), True, 0.20, 0.10),
    GuardSpec("max open per symbol", "max_open_per_symbol", {"max_open": 2}, 2, ">=",
              (0, 1), (2, 3), True, 0.10, -0.05),
    GuardSpec("duplicate position", "duplicate_position", {}, 1, ">=",
              (0, 0), (1, 1), True, 0.08, 0.0),
    GuardSpec("cooldown after stop", "cooldown_after_stop", {"minutes": 240}, 240, "<",
              (240, 10_000), (0, 239), True, 0.15, 0.08),
    GuardSpec("stoploss guard", "stoploss_guard", {"stop_outs": 3, "lookback_minutes": 1440},
              3, ">=", (0, 2), (3, 5), True, 0.10, -0.08),
    GuardSpec("max drawdown", "max_drawdown", {"max_drawdown": 500}, 500, ">=",
              (0, 499.99), (500, 900), False, 0.07, 0.02),
    GuardSpec("daily loss limit", "daily_loss_limit", {"max_loss": 150}, 150, ">=",
              (0, 149.99), (150, 300), False, 0.05, -0.03),
    GuardSpec("volatility ceiling", "volatility_ceiling", {"max_atr_pct": 4}, 4, ">",
              (0.3, 4), (4.01, 8), False, 0.12, 0.12),
    GuardSpec("liquidity floor", "liquidity_floor", {"min_quote_volume": 1_000_000},
              1_000_000, "<", (1_000_000, 50_000_000), (100_000, 999_999.99), False, 0.05, 0.04),
    GuardSpec("min reward risk", "min_reward_risk", {"min_ratio": 1.5}, 1.5, "<",
              (1.5, 3), (0.8, 1.49), False, 0.08, -0.02),
)  # fmt: skip
GUARDS = len(GUARD_SPECS)

# Signal states, drawn per signal.
P_PASSED, P_BLOCKED = 0.40, 0.55  # the rest is rejected
P_EXPIRED, P_FAILED = 0.01, 0.005  # among passed signals: no fill
P_EXTRA_BLOCK = 0.12  # chance each other guard blocks a blocked signal as well
EXIT_REASONS = ("stop", "target", "timeout", "gap")


@dataclass(frozen=True)
class Generated:
    """What ``generate`` wrote."""

    book_id: int
    signals: int
    decisions: int
    transitions: int
    paper_trades: int
    shadow_trades: int
    equity_points: int
    clock: datetime
    analyse_seconds: float = 0.0  # ANALYZE of the written tables (PostgreSQL only)
    rollup_seconds: float = 0.0  # shadow.rollups.rebuild of the book
    rollup_rows: int = 0


def _timestamps(values: np.ndarray) -> list[str]:
    return [f"{text}+00" for text in np.datetime_as_string(values, unit="s")]


def _money(values: np.ndarray) -> list[str]:
    return [f"{value:.12f}" for value in values.tolist()]


def _nullable(texts: Sequence[str], present: np.ndarray) -> list[str | None]:
    return [text if ok else None for text, ok in zip(texts, present.tolist(), strict=True)]


class _Writer:
    """``COPY`` on PostgreSQL, ``executemany`` on SQLite; ids reserved from sequences."""

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.postgres = connection.vendor == "postgresql"

    def reserve(self, table: str, count: int) -> int:
        """The first of ``count`` consecutive ids now owned by the caller."""
        with self.connection.cursor() as cursor:
            if self.postgres:
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                    "nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
                    [table, table, count],
                )
                return int(cursor.fetchone()[0]) - count + 1
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
            return int(cursor.fetchone()[0]) + 1

    def write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        quoted = ", ".join(self.connection.ops.quote_name(c) for c in columns)
        written = 0
        with self.connection.cursor() as cursor:
            if self.postgres:
                with cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        written += 1
                return written
            batch = [list(row) for row in rows]
            if batch:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", batch)
            return len(batch)


def _configure(book_name: str, seed: int) -> tuple[Any, list[Any], list[Any]]:
    from signals.models import Book, BookGuard, BookStrategy, GuardConfig, StrategyConfig

    book = Book.objects.create(
        name=book_name,
        kind=Book.Kind.REPLAY,
        description=f"page benchmark, generator v{VERSION}, seed {seed}",
    )
    symbols = list(MARKETS)
    strategies = []
    for index in range(STRATEGIES):
        kind = STRATEGY_KINDS[index % len(STRATEGY_KINDS)]
        symbol = symbols[index % len(symbols)]
        name = f"{book_name} {kind} {symbol} #{index + 1:02d}"
        config = StrategyConfig.objects.create(
            name=name,
            kind=kind,
            params={"max_hold": 48},
            exchange=EXCHANGE,
            symbol=symbol,
            timeframe=TIMEFRAME,
        )
        strategies.append(
            BookStrategy.objects.create(
                book=book,
                config=config,
                config_version=1,
                name=name,
                kind=kind,
                params=config.params,
                exchange=EXCHANGE,
                symbol=symbol,
                timeframe=TIMEFRAME,
                fee_rate=FEE_RATE,
            )
        )
    guards = []
    for spec in GUARD_SPECS:
        guard_config = GuardConfig.objects.create(
            name=f"{book_name} {spec.name}", kind=spec.kind, params=spec.params
        )
        guards.append(
            BookGuard.objects.create(
                book=book,
                config=guard_config,
                config_version=1,
                name=spec.name,
                kind=spec.kind,
                params=spec.params,
            )
        )
    return book, strategies, guards


def _signal_times(
    rng: np.random.Generator, per_strategy: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Candle index (from the span's start) and side of every signal, strategy by strategy:
    distinct (candle, side) pairs per strategy, as the unique constraint wants."""
    most = max(per_strategy)
    candles = max(35_040, math.ceil(most * 0.75))  # a year of 15-minute candles at least
    strategy, candle, side = [], [], []
    for index, count in enumerate(per_strategy):
        slots = np.sort(rng.choice(2 * candles, size=count, replace=False))
        strategy.append(np.full(count, index, dtype=np.int64))
        candle.append(slots // 2)
        side.append(slots % 2)
    return np.concatenate(strategy), np.concatenate(candle), np.concatenate(side), candles


def generate(*, signals: int, seed: int = 7, book_name: str = BOOK_NAME) -> Generated:
    """Write a benchmark book of ``signals`` signals (see the module docstring)."""
    from django.utils import timezone

    from shadow.models import ShadowTrade
    from signals.models import EquityPoint, GuardDecision, PaperTrade, Signal, SignalTransition

    if signals < STRATEGIES:
        raise ValueError(f"at least {STRATEGIES} signals, one per strategy")
    rng = np.random.default_rng(seed)
    book, strategies, guards = _configure(book_name, seed)
    writer = _Writer()
    now = timezone.now().isoformat()
    wall_now = np.datetime64(timezone.now().replace(tzinfo=None), "s")

    per_strategy = [signals // STRATEGIES + (i < signals % STRATEGIES) for i in range(STRATEGIES)]
    strategy, candle, side, span = _signal_times(rng, per_strategy)
    order = np.lexsort((strategy, candle))  # time order, as a replay writes them
    strategy, candle, side = strategy[order], candle[order], side[order]
    start = END - span * STEP
    candle_time = start + candle * STEP
    clock = candle_time.max()
    # When each row was written, as a live book writes them: its candle's close shifted so
    # that the last close is now. The last 24 hours then hold a day of the book's
    # decisions (what the health page ranks exactly), not all of them.
    offset = wall_now - (clock + STEP).astype("datetime64[s]")
    n = signals

    symbols = list(MARKETS)
    symbol_of = np.array([symbols[i % len(symbols)] for i in range(STRATEGIES)])[strategy]
    base = np.array([MARKETS[s] for s in symbols])[np.arange(STRATEGIES) % len(symbols)][strategy]
    # A slow random walk per market: prices drift ±40 % over the span.
    drift = np.exp(0.4 * np.sin(candle / span * 6.0 + strategy % len(symbols)))
    entry = base * drift * (1 + rng.normal(0, 0.002, n))
    long = side == 0
    direction = np.where(long, 1.0, -1.0)
    stop_pct = rng.uniform(0.006, 0.03, n)
    reward_risk = rng.uniform(1.0, 3.0, n)
    stop = entry * (1 - direction * stop_pct)
    target = entry * (1 + direction * stop_pct * reward_risk)
    max_hold = rng.integers(24, 97, n)

    draw = rng.random(n)
    passed = draw < P_PASSED
    blocked = (draw >= P_PASSED) & (draw < P_PASSED + P_BLOCKED)
    decided = passed | blocked
    no_fill = rng.random(n)
    expired = passed & (no_fill < P_EXPIRED)
    failed = passed & (no_fill >= P_EXPIRED) & (no_fill < P_EXPIRED + P_FAILED)

    # Which guards block each blocked signal: one first (by weight), others sometimes.
    weights = np.array([g.weight for g in GUARD_SPECS])
    first = rng.choice(GUARDS, size=n, p=weights / weights.sum())
    blocks = (rng.random((n, GUARDS)) < P_EXTRA_BLOCK) | (np.arange(GUARDS) == first[:, None])
    blocks &= blocked[:, None]
    bias = np.where(blocked, np.array([g.bias for g in GUARD_SPECS])[first], 0.0)

    # Outcomes (shadow for every decided signal; paper equals the control shadow).
    p_stop = np.clip(0.45 + bias, 0.05, 0.9)
    u = rng.random(n)
    reason = np.where(
        u < p_stop,
        0,
        np.where(u < p_stop + 0.35, 1, np.where(u < p_stop + 0.35 + 0.17, 2, 3)),
    )
    reason = np.where((reason == 3) & (rng.random(n) < 0.5), 0, reason)
    move = np.select(
        [reason == 0, reason == 1, reason == 2],
        [
            -stop_pct * rng.uniform(1.0, 1.1, n),
            stop_pct * reward_risk,
            rng.normal(0, 1, n) * stop_pct / 2,
        ],
        -stop_pct * rng.uniform(1.1, 1.6, n),
    )
    hold = np.where(reason == 2, max_hold, np.minimum(max_hold, rng.geometric(0.08, n)))
    entry_time = candle_time + STEP
    exit_time = entry_time + hold * STEP
    closed = decided & (exit_time <= clock)
    open_ = decided & ~closed
    quantity = NOTIONAL / entry
    entry_fill = entry
    exit_price = entry_fill * (1 + direction * move)
    fees = NOTIONAL * FEE_RATE + quantity * exit_price * FEE_RATE
    pnl = NOTIONAL * move - fees
    return_pct = pnl / NOTIONAL * 100
    r_multiple = pnl / (NOTIONAL * stop_pct)
    mae = -np.abs(rng.uniform(0, 1, n) * np.maximum(-move, stop_pct / 3)) * 100
    mfe = np.abs(rng.uniform(0, 1, n) * np.maximum(move, stop_pct / 3)) * 100

    state = np.full(n, "rejected", dtype=object)
    state[blocked] = "blocked"
    state[passed & closed] = "closed"
    state[passed & open_] = "executed"
    state[expired] = "expired"
    state[failed] = "failed"
    paper = passed & ~expired & ~failed

    first_id = writer.reserve(Signal._meta.db_table, n)
    ids = np.arange(first_id, first_id + n)
    sides_all = np.where(long, "long", "short")
    strategy_rows = [(s.config_id, s.pk) for s in strategies]
    guard_ids = [g.pk for g in guards]

    # Observed values per guard, by kind: in the blocking range when it blocked.
    observed: list[np.ndarray] = []
    for k, spec in enumerate(GUARD_SPECS):
        low = np.where(blocks[:, k], spec.blocking[0], spec.passing[0])
        high = np.where(blocks[:, k], spec.blocking[1], spec.passing[1])
        if spec.integer:
            observed.append(rng.integers(low.astype(np.int64), high.astype(np.int64) + 1))
        else:
            observed.append(np.round(rng.uniform(low, high), 2))
    observed_matrix = np.stack(observed, axis=1)
    thresholds = [f"{spec.threshold:.2f}" for spec in GUARD_SPECS]
    reasons = {
        (k, verdict): f"{spec.kind}: observed {'blocks' if verdict else 'passes'} "
        f"({spec.blocks_when} {spec.threshold:g})"
        for k, spec in enumerate(GUARD_SPECS)
        for verdict in (False, True)
    }
    paths = {
        "rejected": (("reject", "generated", "rejected"),),
        "blocked": (("block", "generated", "blocked"),),
        "expired": (("approve", "generated", "approved"), ("expire", "approved", "expired")),
        "failed": (("approve", "generated", "approved"), ("fail", "approved", "failed")),
        "executed": (("approve", "generated", "approved"), ("execute", "approved", "executed")),
        "closed": (
            ("approve", "generated", "approved"),
            ("execute", "approved", "executed"),
            ("close", "executed", "closed"),
        ),
    }
    paper = passed & ~expired & ~failed
    expired_outcome = ("expired", *([None] * 5), "", *([None] * 7))

    def chunks() -> Iterable[tuple[int, int]]:
        for lo in range(0, n, CHUNK):
            yield lo, min(n, lo + CHUNK)

    def signal_rows() -> Iterable[tuple[Any, ...]]:
        for lo, hi in chunks():
            part = slice(lo, hi)
            candle_text = _timestamps(candle_time[part])
            decided_text = _timestamps(candle_time[part] + STEP)
            written_text = _timestamps(candle_time[part] + STEP + offset)
            entry_text, stop_text = _money(entry[part]), _money(stop[part])
            target_text = _money(target[part])
            id_list, strategy_list = ids[part].tolist(), strategy[part].tolist()
            state_list, symbol_list = state[part].tolist(), symbol_of[part].tolist()
            hold_list, side_list = max_hold[part].tolist(), sides_all[part].tolist()
            for j in range(hi - lo):
                config_id, book_strategy_id = strategy_rows[strategy_list[j]]
                yield (
                    id_list[j], book.pk, config_id, book_strategy_id, EXCHANGE, symbol_list[j],
                    TIMEFRAME, candle_text[j], side_list[j], entry_text[j], stop_text[j],
                    target_text[j], hold_list[j], "", state_list[j], written_text[j],
                    decided_text[j] if state_list[j] != "rejected" else None,
                )  # fmt: skip

    def decision_rows() -> Iterable[tuple[Any, ...]]:
        for lo, hi in chunks():
            part = slice(lo, hi)
            id_list, decided_list = ids[part].tolist(), decided[part].tolist()
            written_text = _timestamps(candle_time[part] + STEP + offset)
            blocks_list = blocks[part].tolist()
            values = observed_matrix[part].tolist()
            for j in range(hi - lo):
                if not decided_list[j]:
                    continue
                row_blocks, row_values = blocks_list[j], values[j]
                for k in range(GUARDS):
                    verdict = row_blocks[k]
                    yield (
                        id_list[j], GUARD_SPECS[k].name, guard_ids[k],
                        "block" if verdict else "pass", reasons[(k, verdict)],
                        f"{row_values[k]:.2f}", thresholds[k], written_text[j],
                    )  # fmt: skip

    def transition_rows() -> Iterable[tuple[Any, ...]]:
        for lo, hi in chunks():
            part = slice(lo, hi)
            decided_text = _timestamps(candle_time[part] + STEP)
            entry_time_text, exit_text = _timestamps(entry_time[part]), _timestamps(exit_time[part])
            times = {
                "reject": decided_text, "block": decided_text, "approve": decided_text,
                "expire": entry_time_text, "fail": entry_time_text, "execute": entry_time_text,
                "close": exit_text,
            }  # fmt: skip
            written = {
                name: _timestamps(moments + offset)
                for name, moments in (
                    ("decided", candle_time[part] + STEP),
                    ("entry", entry_time[part]),
                    ("exit", exit_time[part]),
                )
            }
            wall = {
                "reject": "decided", "block": "decided", "approve": "decided", "expire": "entry",
                "fail": "entry", "execute": "entry", "close": "exit",
            }  # fmt: skip
            id_list, state_list = ids[part].tolist(), state[part].tolist()
            for j in range(hi - lo):
                for name, source, target_state in paths[state_list[j]]:
                    yield (
                        id_list[j], name, source, target_state, "bench", "{}",
                        times[name][j], written[wall[name]][j],
                    )  # fmt: skip

    def trade_rows(which: np.ndarray, *, shadow: bool) -> Iterable[tuple[Any, ...]]:
        """Paper (``which``: filled passed signals, plus expired ones) or shadow rows."""
        for lo, hi in chunks():
            part = slice(lo, hi)
            chosen = np.flatnonzero(which[part])
            if not len(chosen):
                continue
            rows = chosen + lo
            entry_time_text, exit_text = _timestamps(entry_time[rows]), _timestamps(exit_time[rows])
            quantity_text, fill_text = _money(quantity[rows]), _money(entry_fill[rows])
            exit_price_text, fees_text = _money(exit_price[rows]), _money(fees[rows])
            pnl_text, return_text = _money(pnl[rows]), _money(return_pct[rows])
            r_text, mae_text, mfe_text = (
                _money(r_multiple[rows]),
                _money(mae[rows]),
                _money(mfe[rows]),
            )
            id_list, side_list = ids[rows].tolist(), sides_all[rows].tolist()
            closed_list, reason_list = closed[rows].tolist(), reason[rows].tolist()
            expired_list, blocked_list = expired[rows].tolist(), blocked[rows].tolist()
            for j in range(len(rows)):
                if not shadow and expired_list[j]:
                    fields: tuple[Any, ...] = expired_outcome
                elif closed_list[j]:
                    fields = (
                        "closed", quantity_text[j], entry_time_text[j], fill_text[j],
                        exit_text[j], exit_price_text[j], EXIT_REASONS[reason_list[j]],
                        fees_text[j], pnl_text[j], return_text[j], r_text[j], mae_text[j],
                        mfe_text[j], exit_text[j],
                    )  # fmt: skip
                else:
                    fields = (
                        "open", quantity_text[j], entry_time_text[j], fill_text[j], None, None,
                        "", None, None, None, None, mae_text[j], mfe_text[j], None,
                    )  # fmt: skip
                row = (book.pk, id_list[j], side_list[j], *fields, now)
                if shadow:
                    row = (*row, "blocked" if blocked_list[j] else "control")
                yield row

    from shadow.persistence import (
        _DECISION_COLUMNS,
        _SIGNAL_COLUMNS,
        _TRADE_COLUMNS,
        _TRANSITION_COLUMNS,
    )

    writer.write(Signal._meta.db_table, _SIGNAL_COLUMNS, signal_rows())
    decisions = writer.write(GuardDecision._meta.db_table, _DECISION_COLUMNS, decision_rows())
    transitions = writer.write(
        SignalTransition._meta.db_table, _TRANSITION_COLUMNS, transition_rows()
    )
    paper_trades = writer.write(
        PaperTrade._meta.db_table, _TRADE_COLUMNS, trade_rows(paper | expired, shadow=False)
    )
    shadow_trades = writer.write(
        ShadowTrade._meta.db_table, (*_TRADE_COLUMNS, "group"), trade_rows(decided, shadow=True)
    )

    # Realised equity after each paper close, in exit-time order.
    closing = np.flatnonzero(paper & closed)
    closing = closing[np.argsort(exit_time[closing], kind="stable")]
    equity = np.cumsum(pnl[closing])
    equity_points = writer.write(
        EquityPoint._meta.db_table,
        ("book_id", "time", "equity"),
        (
            (book.pk, t, e)
            for t, e in zip(_timestamps(exit_time[closing]), _money(equity), strict=True)
        ),
    )
    analyse_seconds, rollup_seconds, rollup_rows = _build_rollups(book.pk, writer.postgres)
    return Generated(
        book_id=book.pk,
        signals=n,
        decisions=decisions,
        transitions=transitions,
        paper_trades=paper_trades,
        shadow_trades=shadow_trades,
        equity_points=equity_points,
        clock=datetime.fromisoformat(str(clock)).replace(tzinfo=UTC),
        analyse_seconds=analyse_seconds,
        rollup_seconds=rollup_seconds,
        rollup_rows=rollup_rows,
    )


ANALYSED = (
    "signals_signal",
    "signals_guarddecision",
    "signals_papertrade",
    "shadow_shadowtrade",
)


def _build_rollups(book_id: int, postgres: bool) -> tuple[float, float, int]:
    """The book's rollups from its rows (``shadow.rollups.rebuild``, in the caller's
    transaction); seconds to analyse the tables it reads, seconds of the rebuild, rows."""
    from django.db import connection

    from shadow import rollups
    from shadow.models import BookRollup

    started = time.perf_counter()
    if postgres:
        with connection.cursor() as cursor:
            for table in ANALYSED:
                cursor.execute(f"ANALYZE {table}")
    analysed = time.perf_counter()
    rollups.rebuild(book_id)
    built = time.perf_counter()
    return analysed - started, built - analysed, BookRollup.objects.filter(book_id=book_id).count()


def describe(generated: Generated) -> str:
    return json.dumps(
        {
            "signals": generated.signals,
            "decisions": generated.decisions,
            "transitions": generated.transitions,
            "paper_trades": generated.paper_trades,
            "shadow_trades": generated.shadow_trades,
            "equity_points": generated.equity_points,
            "rollup_rows": generated.rollup_rows,
            "analyse_seconds": round(generated.analyse_seconds, 1),
            "rollup_seconds": round(generated.rollup_seconds, 1),
        }
    )
