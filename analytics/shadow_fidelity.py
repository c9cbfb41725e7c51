"""Shadow fidelity: does the shadow engine price a trade as the book actually traded it?

Every approved signal has a control-group shadow trade, evaluated by the same fill model
on the same candles as its paper trade, so the two must agree exactly in paper mode: a
difference is a bug. When the signal was traded for real (its entry order filled, see
``signals.execution``), the executed trade is the live one: entry and exit at the
orders' average fill prices, P&L from the filled amount and the fees the exchange
charged (a fee in the base currency converted at its fill price); its exit reason and
time are the paper trade's, because the exit order is placed when the paper trade
closes. There, differences are live slippage and fees.

Everything is computed in the database: the summary from per-day rows kept with the
rollups (``analytics.fidelity_rollup``), one query for the list of disagreements.
Differences are **executed minus shadow** (paper or live minus shadow): a positive P&L
difference means the executed trade did better than the shadow engine said.
"""

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Abs, Coalesce, Left, Round, StrIndex, TruncDate
from django.urls import reverse

from analytics.filters import Filters
from analytics.numbers import cents, fine
from analytics.trades import EXIT_REASON_WORDS, significant, window
from markets.admin_format import quote_currency
from shadow.models import ShadowTrade
from signals.models import ExchangeOrder, SimulatedTrade

CENT = Decimal("0.01")
LIST_LIMIT = 100

_MONEY: DecimalField[Any, Any] = DecimalField(max_digits=30, decimal_places=12)
_CLOSED = SimulatedTrade.Status.CLOSED


def _order_fee(relation: str) -> Case:
    """The fee of the filled order joined as ``relation``, in the quote currency."""
    return Case(
        # A fee charged in the base currency (BTC of BTC/USD) is worth fee x fill price.
        When(
            **{
                f"{relation}__fee_currency": Left(
                    f"{relation}__symbol", StrIndex(f"{relation}__symbol", Value("/")) - 1
                )
            },
            then=Coalesce(f"{relation}__fee_cost", Value(Decimal(0)))
            * F(f"{relation}__average_price"),
        ),
        default=Coalesce(f"{relation}__fee_cost", Value(Decimal(0))),
        output_field=_MONEY,
    )


def _filled(purpose: str) -> FilteredRelation:
    """The signal's filled order for ``purpose``: at most one (``order_one_per_purpose``),
    joined once (LEFT JOIN) rather than read by a subquery per column and per use."""
    return FilteredRelation(
        "signal__orders",
        condition=Q(signal__orders__purpose=purpose, signal__orders__filled__gt=0),
    )


def book_pairs(
    book_id: int, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[ShadowTrade]:
    """The control-group shadow trades of the book whose signal has a paper trade and
    its candle time in ``[since, until)`` (``None``: no bound), not annotated yet."""
    pairs = ShadowTrade.objects.filter(
        book_id=book_id,
        # The same book (a shadow trade's is its signal's): lets a window of candle
        # times be an index range of the book's signals (``signal_book_clock``).
        signal__book_id=book_id,
        group=ShadowTrade.Group.CONTROL,
        signal__paper_trade__isnull=False,
    )
    if since is not None:
        pairs = pairs.filter(signal__candle_time__gte=since)
    if until is not None:
        pairs = pairs.filter(signal__candle_time__lt=until)
    return pairs


def fidelity_pairs(filters: Filters) -> QuerySet[ShadowTrade]:
    """The control-group shadow trades of the book whose signal has a paper trade, each
    annotated with its executed trade (live when the entry order filled, else paper),
    the differences, and whether the pair agrees. Period: by the signal's candle time."""
    assert filters.book is not None
    return annotated(window(book_pairs(filters.book.pk, filters.since, filters.until), filters))


def annotated(pairs: QuerySet[ShadowTrade]) -> QuerySet[ShadowTrade]:
    """``pairs`` (of ``book_pairs``) annotated with the executed trade, the differences
    and what agrees (see ``fidelity_pairs``)."""
    entry, exit_ = ExchangeOrder.Purpose.ENTRY, ExchangeOrder.Purpose.EXIT
    paper = "signal__paper_trade__"
    direction = Case(When(side="long", then=Value(1)), default=Value(-1))
    pairs = pairs.annotate(entry_order=_filled(entry), exit_order=_filled(exit_)).annotate(
        live=ExpressionWrapper(Q(entry_order__id__isnull=False), output_field=BooleanField()),
        live_entry=F("entry_order__average_price"),
        live_entry_fee=_order_fee("entry_order"),
        live_exit=F("exit_order__average_price"),
        live_exit_fee=_order_fee("exit_order"),
        live_quantity=F("exit_order__filled"),
    )
    live_closed = Q(live=True, live_exit__isnull=False)
    pairs = pairs.annotate(
        executed_entry=Case(
            When(live=True, then=F("live_entry")),
            default=F(f"{paper}entry_price"),
            output_field=_MONEY,
        ),
        executed_exit=Case(
            When(live=True, then=F("live_exit")),
            default=F(f"{paper}exit_price"),
            output_field=_MONEY,
        ),
        executed_pnl=Case(
            When(
                live_closed,
                then=direction * (F("live_exit") - F("live_entry")) * F("live_quantity")
                - Coalesce("live_entry_fee", Value(Decimal(0)))
                - Coalesce("live_exit_fee", Value(Decimal(0))),
            ),
            When(live=True, then=Value(None)),
            default=F(f"{paper}pnl"),
            output_field=_MONEY,
        ),
        executed_exit_time=Case(
            When(live=True, live_exit__isnull=True, then=Value(None)),
            default=F(f"{paper}exit_time"),
            output_field=DateTimeField(),
        ),
        executed_reason=Case(
            When(live=True, live_exit__isnull=True, then=Value("")),
            default=F(f"{paper}exit_reason"),
        ),
        executed_closed=ExpressionWrapper(
            live_closed | Q(live=False, **{f"{paper}status": _CLOSED}),
            output_field=BooleanField(),
        ),
    )
    pairs = pairs.annotate(
        entry_difference=F("executed_entry") - F("entry_price"),
        exit_difference=F("executed_exit") - F("exit_price"),
        pnl_difference=F("executed_pnl") - F("pnl"),
    )
    pairs = pairs.annotate(
        abs_entry_difference=Abs("entry_difference"),
        abs_exit_difference=Abs("exit_difference"),
        abs_pnl_difference=Abs("pnl_difference"),
        compared=ExpressionWrapper(
            Q(status=_CLOSED) | Q(executed_closed=True), output_field=BooleanField()
        ),
        reason_agrees=ExpressionWrapper(
            Q(exit_reason=F("executed_reason")), output_field=BooleanField()
        ),
        time_agrees=Case(
            When(exit_time=F("executed_exit_time"), then=Value(True)),
            When(exit_time__isnull=True, executed_exit_time__isnull=True, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    )
    return pairs


def with_verdicts(pairs: QuerySet[ShadowTrade]) -> QuerySet[ShadowTrade]:
    pairs = pairs.annotate(
        pnl_cents=Round("pnl", 2), executed_pnl_cents=Round("executed_pnl", 2)
    ).annotate(
        pnl_off=Case(
            When(pnl_difference__isnull=True, then=Value(True)),
            When(abs_pnl_difference__gt=CENT, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
        same_cent=ExpressionWrapper(
            Q(pnl_cents=F("executed_pnl_cents")), output_field=BooleanField()
        ),
    )
    return pairs.annotate(
        disagrees=ExpressionWrapper(
            Q(compared=True) & (Q(reason_agrees=False) | Q(time_agrees=False) | Q(pnl_off=True)),
            output_field=BooleanField(),
        ),
        exact=ExpressionWrapper(
            Q(compared=True, reason_agrees=True, time_agrees=True, same_cent=True),
            output_field=BooleanField(),
        ),
    )


# The per-pair columns of ``with_verdicts`` that the summary's measures read.
VERDICTS = (
    "live", "compared", "exact", "disagrees", "reason_agrees", "time_agrees", "pnl_off",
    "abs_entry_difference", "abs_exit_difference", "abs_pnl_difference",
)  # fmt: skip


@lru_cache(maxsize=256)
def _book_rows(alias: str, book_id: int) -> tuple[str, tuple[Any, ...]]:
    rows = (
        with_verdicts(annotated(book_pairs(book_id)))
        .values(
            *VERDICTS,
            k_time=F("signal__candle_time"),
            k_day=TruncDate("signal__candle_time", tzinfo=UTC),
            k_strategy_id=F("signal__book_strategy_id"),
            k_symbol=F("signal__symbol"),
            k_side=F("side"),
        )
        .order_by()
    )
    sql, params = rows.query.sql_with_params()
    return sql, tuple(params)


def book_rows(book_id: int) -> tuple[str, list[Any]]:
    """SQL of one row per pair of the book (``book_pairs``, ``annotated``): the
    ``VERDICTS`` columns and what places the pair, ``k_time`` (the signal's candle time),
    ``k_day`` (its UTC day), ``k_strategy_id``, ``k_symbol`` and ``k_side`` (the shadow
    trade's), for ``measures_query`` to narrow and aggregate. Each verdict is compiled
    once, as a column (aggregated directly, Django inlines its whole expression again
    into every aggregate and filter that reads it), and the SQL once per book and
    process: it depends on nothing else, and Django takes about 15 ms of CPU to build
    it."""
    sql, params = _book_rows(connection.alias, book_id)
    return sql, list(params)


def _measures_sql(rows: str) -> dict[str, str]:
    """The measures as SQL aggregates over the ``book_rows`` columns of table alias
    ``rows``: what ``Count``/``Sum``/``Max`` with ``filter=`` compile to (a ``FILTER``
    clause is a ``CASE`` here, for every backend), cast as Django casts a decimal
    aggregate on SQLite."""
    q = connection.ops.quote_name

    def column(name: str) -> str:
        return f"{rows}.{q(name)}"

    def count(when: str, what: str = "1") -> str:
        return f"COUNT(CASE WHEN {when} THEN {what} END)"

    def money(sql: str) -> str:
        return f"CAST({sql} AS NUMERIC)" if connection.vendor == "sqlite" else sql

    compared = f"({column('compared')})"
    found = {
        "pairs": "COUNT(*)",
        "live": count(column("live")),
        "compared": count(compared),
        "exact": count(column("exact")),
        "disagreements": count(column("disagrees")),
        "reason_differs": count(f"{compared} AND NOT ({column('reason_agrees')})"),
        "time_differs": count(f"{compared} AND NOT ({column('time_agrees')})"),
        "pnl_differs": count(f"{compared} AND ({column('pnl_off')})"),
    }
    for name in ("entry", "exit", "pnl"):
        difference = column(f"abs_{name}_difference")
        found[f"{name}_n"] = count(compared, difference)
        found[f"{name}_sum"] = money(f"SUM(CASE WHEN {compared} THEN {difference} END)")
        found[f"{name}_max"] = money(f"MAX(CASE WHEN {compared} THEN {difference} END)")
    return found


def measures_query(
    book_id: int, where: list[tuple[str, list[Any]]], keys: tuple[str, ...] = ()
) -> tuple[str, list[Any]]:
    """The fidelity summary's measures over the rows of ``book_rows`` that every
    condition of ``where`` keeps (SQL over the rows' columns as ``pair``, and its
    parameters), grouped by the ``keys`` columns, as SQL and its parameters: columns
    ``keys``, then ``m_<measure>``; one definition for the per-day rows of
    ``analytics.fidelity_rollup`` and a window's partial days. The measures: counts of
    pairs, live pairs, compared pairs, exact matches, disagreements and of the compared
    pairs whose exit reason, exit time or P&L differ; and per difference (entry, exit,
    P&L; executed minus shadow) of the compared pairs how many have one (``*_n``), the
    sum of its absolute values (``*_sum``) and the largest (``*_max``)."""
    sql, params = book_rows(book_id)
    q = connection.ops.quote_name
    picked = [f"pair.{q(key)}" for key in keys]
    aggregates = [
        f"{aggregate} AS {q('m_' + name)}" for name, aggregate in _measures_sql("pair").items()
    ]
    found = f"SELECT {', '.join([*picked, *aggregates])} FROM ({sql}) pair"
    if where:
        found += " WHERE " + " AND ".join(f"({condition})" for condition, _ in where)
        params += [value for _, values in where for value in values]
    if keys:
        found += f" GROUP BY {', '.join(picked)}"
    return found, params


def row_column(name: str) -> str:
    """A column of ``book_rows`` as ``measures_query``'s conditions name it."""
    return f"pair.{connection.ops.quote_name(name)}"


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """The page's summary from the ``measures`` of a window (summed over its days, the
    maxima the largest): means are the sums over the counts."""

    def mean(name: str) -> Decimal | None:
        count, total = row[f"{name}_n"], row[f"{name}_sum"]
        return None if not count or total is None else Decimal(total) / count

    return {
        "pairs": row["pairs"],
        "live": row["live"],
        "paper": row["pairs"] - row["live"],
        "compared": row["compared"],
        "not_compared": row["pairs"] - row["compared"],
        "exact": row["exact"],
        "disagreements": row["disagreements"],
        "reason_differs": row["reason_differs"],
        "time_differs": row["time_differs"],
        "pnl_differs": row["pnl_differs"],
        "entry_difference": {"mean": fine(mean("entry")), "max": fine(row["entry_max"])},
        "exit_difference": {"mean": fine(mean("exit")), "max": fine(row["exit_max"])},
        "pnl_difference": {"mean": cents(mean("pnl")), "max": cents(row["pnl_max"])},
    }


_LIST_COLUMNS = (
    "signal_id",
    "signal__symbol",
    "signal__candle_time",
    "signal__book_strategy__name",
    "signal__book_strategy__config_version",
    "side",
    "live",
    "entry_price",
    "executed_entry",
    "entry_difference",
    "exit_price",
    "executed_exit",
    "exit_difference",
    "pnl",
    "executed_pnl",
    "pnl_difference",
    "exit_reason",
    "executed_reason",
    "exit_time",
    "executed_exit_time",
    "reason_agrees",
    "time_agrees",
    "pnl_off",
)


def disagreements(pairs: QuerySet[ShadowTrade], limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """The first ``limit`` disagreeing pairs by signal candle time, in one query."""
    rows = (
        with_verdicts(pairs)
        .filter(Q(disagrees=True))
        .order_by("signal__candle_time", "id")
        .values(*_LIST_COLUMNS)[:limit]
    )
    return [_disagreement(row) for row in rows]


def _disagreement(row: dict[str, Any]) -> dict[str, Any]:
    name = row["signal__book_strategy__name"]
    what = []
    if not row["reason_agrees"]:
        what.append("exit reason")
    if not row["time_agrees"]:
        what.append("exit time")
    if row["pnl_off"]:
        what.append("P&L")
    return {
        "signal_id": row["signal_id"],
        "signal_url": reverse("analytics:signal", args=[row["signal_id"]]),
        "symbol": row["signal__symbol"],
        "side": row["side"],
        "signal_time": row["signal__candle_time"],
        "strategy": f"{name} v{row['signal__book_strategy__config_version']}" if name else None,
        "executed": "live" if row["live"] else "paper",
        "currency": quote_currency(row["signal__symbol"]),
        "differs_in": what,
        "shadow": {
            "entry_price": significant(row["entry_price"]),
            "exit_price": significant(row["exit_price"]),
            "pnl": cents(row["pnl"]),
            "exit_reason": EXIT_REASON_WORDS.get(row["exit_reason"]) or None,
            "exit_time": row["exit_time"],
        },
        "executed_trade": {
            "entry_price": significant(row["executed_entry"]),
            "exit_price": significant(row["executed_exit"]),
            "pnl": cents(row["executed_pnl"]),
            "exit_reason": EXIT_REASON_WORDS.get(row["executed_reason"] or "") or None,
            "exit_time": row["executed_exit_time"],
        },
        "entry_difference": fine(row["entry_difference"]),
        "exit_difference": fine(row["exit_difference"]),
        "pnl_difference": cents(row["pnl_difference"]),
    }
