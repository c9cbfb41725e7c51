"""Write what the engine returned into a book: signals, their transition logs, guard
decisions, paper and shadow trades and equity points.

New rows go in bulk, in their final state with their full history: PostgreSQL through
psycopg 3's ``COPY``, SQLite through ``executemany``, with primary keys reserved first
so children can point at their parents without reading anything back. The caller owns
the transaction: a failure leaves nothing behind.

Floats leave the engine here: every price, quantity and money value is written as the
shortest decimal that reads back as the same float (``repr``), which the engine-number
columns (``signals.models.engine_number``) store exactly, so a stored trade gives back
the engine's figures.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from markets.timestamps import utc_from_ms
from shadow.models import ShadowTrade
from signals.domain.engine import (
    SignalKey,
    SignalRecord,
    TradeRecord,
    Transition,
)
from signals.domain.fills import OpenTrade, TradeResult
from signals.models import (
    Book,
    BookGuard,
    BookStrategy,
    EquityPoint,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalTransition,
)
from signals.services import SYSTEM

logger = logging.getLogger("shadow")

OnRows = Callable[[int], object]

_SIGNAL_COLUMNS = (
    "id",
    "book_id",
    "strategy_config_id",
    "book_strategy_id",
    "exchange",
    "symbol",
    "timeframe",
    "candle_time",
    "side",
    "entry_price",
    "stop_loss",
    "take_profit",
    "max_hold_candles",
    "reason",
    "state",
    "created_at",
    "decided_at",
)
_TRANSITION_COLUMNS = (
    "signal_id",
    "name",
    "from_state",
    "to_state",
    "actor",
    "payload",
    "simulated_at",
    "created_at",
)
_DECISION_COLUMNS = (
    "signal_id",
    "guard",
    "book_guard_id",
    "verdict",
    "reason",
    "observed_value",
    "threshold",
    "created_at",
)
OUTCOME_COLUMNS = (
    "status",
    "quantity",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "exit_reason",
    "fees",
    "pnl",
    "return_pct",
    "r_multiple",
    "mae",
    "mfe",
    "closed_at",
)
_TRADE_COLUMNS = ("book_id", "signal_id", "side", *OUTCOME_COLUMNS, "created_at")
_EQUITY_COLUMNS = ("book_id", "time", "equity")


@dataclass(frozen=True, slots=True)
class Written:
    """Rows written, per table."""

    signals: int = 0
    transitions: int = 0
    decisions: int = 0
    paper_trades: int = 0
    shadow_trades: int = 0
    equity_points: int = 0

    @property
    def rows(self) -> int:
        return (
            self.signals
            + self.transitions
            + self.decisions
            + self.paper_trades
            + self.shadow_trades
            + self.equity_points
        )


def decimal_text(value: float | None) -> str | None:
    """A float from the engine as the text of the ``Decimal`` that reads back as the same
    float (``None`` for missing and not-a-number values). Bulk writes send this text as it
    is."""
    if value is None or not math.isfinite(value):
        return None
    return repr(float(value))


def decimal_of(value: float | None) -> Decimal | None:
    """A float from the engine as the ``Decimal`` that reads back as the same float."""
    text = decimal_text(value)
    return None if text is None else Decimal(text)


def outcome_fields(
    status: str,
    trade: OpenTrade | None,
    result: TradeResult | None,
    closed_at: int | None,
    number: Callable[[float | None], Any] = decimal_of,
) -> dict[str, Any]:
    """The ``SimulatedTrade`` columns of a trade's state, as model field values (or, with
    ``number=decimal_text``, as the text a bulk write sends)."""
    fields: dict[str, Any] = dict.fromkeys(OUTCOME_COLUMNS)
    fields |= {"status": status, "exit_reason": ""}
    if result is not None:
        fields |= {
            "quantity": number(result.quantity),
            "entry_time": utc_from_ms(result.entry_time),
            "entry_price": number(result.entry_price),
            "exit_time": utc_from_ms(result.exit_time),
            "exit_price": number(result.exit_price),
            "exit_reason": result.exit_reason,
            "fees": number(result.fees),
            "pnl": number(result.pnl),
            "return_pct": number(result.return_pct),
            "r_multiple": number(result.r_multiple),
            "mae": number(result.mae),
            "mfe": number(result.mfe),
            "closed_at": utc_from_ms(closed_at) if closed_at is not None else None,
        }
    elif trade is not None:
        fields |= {
            "quantity": number(trade.quantity),
            "entry_time": utc_from_ms(trade.entry_time),
            "entry_price": number(trade.entry_price),
            "mae": number(trade.mae),
            "mfe": number(trade.mfe),
        }
    return fields


class BookWriter:
    """Writes engine results into one book; ``strategies`` and ``guards`` map a name to
    the book's frozen ``BookStrategy`` and ``BookGuard`` the engine ran."""

    def __init__(
        self,
        *,
        book: Book,
        strategies: Mapping[str, BookStrategy],
        guards: Mapping[str, BookGuard],
        actor: str = SYSTEM,
    ) -> None:
        self.book = book
        self.strategies = strategies
        self.guards = guards
        self.actor = actor
        self.postgres = connection.vendor == "postgresql"
        self._sqlite_next = 0

    def signal_ids(self, keys: Sequence[SignalKey]) -> dict[SignalKey, int]:
        """Reserve one signal id per key, in order (one statement), for signals to be
        inserted later with ``insert_new(ids=...)``."""
        return dict(zip(keys, self._reserve_ids(Signal._meta.db_table, len(keys)), strict=True))

    def insert_new(
        self,
        *,
        signals: Sequence[SignalRecord],
        transitions: Sequence[Transition],
        trades: Sequence[TradeRecord],
        equity: Sequence[tuple[int, float]],
        on_rows: OnRows | None = None,
        ids: Mapping[SignalKey, int] | None = None,
    ) -> tuple[Written, dict[SignalKey, int]]:
        """Insert new signals with everything that hangs off them, in bulk; returns the
        counts and the id given to each signal (``ids`` when they were reserved earlier
        with ``signal_ids``). Transitions and trades of signals not in ``signals`` are
        left out (the live driver applies those to existing rows)."""
        now = timezone.now()
        if ids is None:
            ids = self.signal_ids([s.key for s in signals])
        else:
            ids = {s.key: ids[s.key] for s in signals}
        report = on_rows or (lambda _n: None)
        self._insert(
            Signal._meta.db_table,
            _SIGNAL_COLUMNS,
            (self._signal_row(ids[s.key], s, now) for s in signals),
        )
        report(len(signals))
        own = [t for t in transitions if t.key in ids]
        self._insert(
            SignalTransition._meta.db_table,
            _TRANSITION_COLUMNS,
            (self._transition_row(ids[t.key], t, now) for t in own),
        )
        report(len(own))
        decisions = [
            self._decision_row(ids[s.key], name, verdict, now)
            for s in signals
            for name, verdict in s.verdicts
        ]
        self._insert(GuardDecision._meta.db_table, _DECISION_COLUMNS, decisions)
        report(len(decisions))
        paper = [t for t in trades if t.kind == "paper" and t.key in ids]
        shadow = [t for t in trades if t.kind == "shadow" and t.key in ids]
        self._insert(
            PaperTrade._meta.db_table,
            _TRADE_COLUMNS,
            (self._trade_row(ids[t.key], t, now) for t in paper),
        )
        self._insert(
            ShadowTrade._meta.db_table,
            (*_TRADE_COLUMNS, "group"),
            (
                (
                    *self._trade_row(ids[t.key], t, now),
                    ShadowTrade.Group.BLOCKED if t.blocked else ShadowTrade.Group.CONTROL,
                )
                for t in shadow
            ),
        )
        report(len(paper) + len(shadow))
        self._insert(
            EquityPoint._meta.db_table,
            _EQUITY_COLUMNS,
            ((self.book.pk, self._when_ms(t), decimal_text(e)) for t, e in equity),
        )
        report(len(equity))
        written = Written(
            signals=len(signals),
            transitions=len(own),
            decisions=len(decisions),
            paper_trades=len(paper),
            shadow_trades=len(shadow),
            equity_points=len(equity),
        )
        return written, ids

    def _reserve_ids(self, table: str, count: int) -> list[int]:
        if not count:
            return []
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [table, count],
                )
                return [row[0] for row in cursor.fetchall()]
            # SQLite: the book row written earlier in this transaction holds the database's
            # write lock, so no other writer can take these ids before we insert them.
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
            # Ids reserved earlier but not inserted yet are not in MAX(id): skip them too.
            start = max(cursor.fetchone()[0] + 1, self._sqlite_next)
            self._sqlite_next = start + count
            return list(range(start, start + count))

    def _insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
        with connection.cursor() as cursor:
            if self.postgres:
                with cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                return
            batch = list(rows)
            if batch:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(
                    f"INSERT INTO {table} ({quoted}) VALUES ({marks})",
                    [[_sqlite(v) for v in row] for row in batch],
                )

    def _when_ms(self, ms: int | None) -> datetime | None:
        return utc_from_ms(ms) if ms is not None else None

    def _signal_row(self, pk: int, record: SignalRecord, now: datetime) -> tuple[Any, ...]:
        market, proposal = record.market, record.proposal
        return (
            pk,
            self.book.pk,
            self.strategies[record.strategy].config_id,
            self.strategies[record.strategy].pk,
            market.exchange,
            market.symbol,
            market.timeframe,
            utc_from_ms(record.candle_time),
            proposal.side,
            decimal_text(proposal.entry_price),
            decimal_text(proposal.stop_loss),
            decimal_text(proposal.take_profit),
            proposal.max_hold,
            proposal.reason,
            record.state,
            now,
            utc_from_ms(record.decided_at),
        )

    def _transition_row(
        self, signal_id: int, transition: Transition, now: datetime
    ) -> tuple[Any, ...]:
        return (
            signal_id,
            transition.name,
            transition.source,
            transition.target,
            self.actor,
            json.dumps(transition.payload),
            utc_from_ms(transition.at),
            now,
        )

    def _decision_row(
        self, signal_id: int, name: str, verdict: Any, now: datetime
    ) -> tuple[Any, ...]:
        guard = self.guards[name]
        return (
            signal_id,
            name,
            guard.pk,
            GuardDecision.Verdict.PASS if verdict.passed else GuardDecision.Verdict.BLOCK,
            verdict.reason,
            decimal_text(verdict.observed),
            decimal_text(verdict.threshold),
            now,
        )

    def _trade_row(self, signal_id: int, trade: TradeRecord, now: datetime) -> tuple[Any, ...]:
        fields = outcome_fields(
            trade.status, trade.trade, trade.result, trade.closed_at, number=decimal_text
        )
        return (
            self.book.pk,
            signal_id,
            trade.side,
            *(fields[c] for c in OUTCOME_COLUMNS),
            now,
        )


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
