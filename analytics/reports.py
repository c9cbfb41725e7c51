"""Reports of a book over a period: one plain dict of figures, rendered as JSON, CSV and a
standalone HTML document, stored as ``Report`` rows by ``manage.py report`` and by the
daily task ``analytics.daily_report``.

Figures follow the pages' conventions (``analytics.filters``): the period ends at the
book's clock, signals count by their candle time and money by the trade's exit time.
Every amount is rounded with ``analytics.numbers`` before it enters the dict, so the three
formats carry the very same numbers.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from celery import shared_task
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.utils import timezone

from analytics.filters import PERIOD_LABELS, Filters, parse_filters
from analytics.guard_skill import book_skill
from analytics.metrics import trade_stats
from analytics.models import Report
from analytics.numbers import cents, json_clean, probability, rate, ratio
from analytics.selectors import book_quote_currency, guard_effectiveness, verdict_min_samples
from markets.timestamps import ms_from_utc
from shadow.models import ShadowTrade
from signals.models import Book, PaperTrade, Signal, SignalState
from work.task_base import WorkTask

logger = logging.getLogger(__name__)

FORMATS = ("html", "json", "csv")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
DAILY_PERIOD = "1d"
DAILY_CREATOR = "daily task"
SIGN_CONVENTION = (
    "Blocked opportunity cost is the shadow P&L of the blocked signals (what blocking gave "
    "up; negative means the blocks avoided a loss). A guard's net impact is minus the shadow "
    "P&L of the signals it blocked: positive means the guard saved money."
)
ZERO = Decimal(0)
# Signals that passed every guard, wherever they went afterwards.
PASSED = (
    SignalState.APPROVED,
    SignalState.EXECUTED,
    SignalState.FAILED,
    SignalState.EXPIRED,
    SignalState.CLOSED,
)


def _exact(value: Any) -> Decimal:
    # SQLite sums decimals as floats; PostgreSQL's numeric sums stay exact.
    return Decimal(str(value)) if value is not None else ZERO


def _window(field: str, filters: Filters) -> Q:
    window = Q()
    if filters.since is not None:
        window &= Q(**{f"{field}__gte": filters.since})
    if filters.until is not None:
        window &= Q(**{f"{field}__lt": filters.until})
    return window


def _strategy_name(prefix: str = "") -> Coalesce:
    # Signals from before books froze their strategies have no book strategy.
    return Coalesce(f"{prefix}book_strategy__name", f"{prefix}strategy_config__name")


def _signal_counts(book: Book, filters: Filters) -> list[dict[str, Any]]:
    return list(
        Signal.objects.filter(_window("candle_time", filters), book=book)
        .annotate(strategy=_strategy_name())
        .values("strategy", "state")
        .order_by()
        .annotate(count=Count("id"))
    )


def _closed_paper(book: Book, filters: Filters) -> QuerySet[PaperTrade]:
    return PaperTrade.objects.filter(
        _window("exit_time", filters),
        book=book,
        status=PaperTrade.Status.CLOSED,
        pnl__isnull=False,
        exit_time__isnull=False,
    )


def _paper_by_strategy(book: Book, filters: Filters) -> list[dict[str, Any]]:
    return list(
        _closed_paper(book, filters)
        .annotate(strategy=_strategy_name("signal__"))
        .values("strategy")
        .order_by()
        .annotate(
            trades=Count("id"),
            wins=Count("id", filter=Q(pnl__gt=0)),
            pnl=Sum("pnl"),
        )
    )


def _blocked_by_strategy(book: Book, filters: Filters) -> list[dict[str, Any]]:
    closed = Q(status=ShadowTrade.Status.CLOSED, pnl__isnull=False) & _window("exit_time", filters)
    still_open = ~Q(status=ShadowTrade.Status.CLOSED) & _window("signal__candle_time", filters)
    return list(
        ShadowTrade.objects.filter(closed | still_open, book=book, group=ShadowTrade.Group.BLOCKED)
        .annotate(strategy=_strategy_name("signal__"))
        .values("strategy")
        .order_by()
        .annotate(
            closed=Count("id", filter=closed),
            open=Count("id", filter=still_open),
            pnl=Sum("pnl", filter=closed),
        )
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def report_data(*, book: Book, period: str, now: datetime | None = None) -> dict[str, Any]:
    """The report of ``book`` over ``period`` (``1d``, ``7d``, ``30d``, ``90d``, ``all``)
    as one plain dict, every amount rounded (money to the cent). Raises
    ``analytics.filters.BadFilterError`` for an unknown period. A fixed number of queries
    whatever the number of signals."""
    filters = parse_filters({"book": str(book.pk), "period": period})
    currency = book_quote_currency(book=book)

    counts = _signal_counts(book, filters)
    by_state = {state.value: 0 for state in SignalState}
    strategies: dict[str, dict[str, Any]] = {}

    def strategy_row(name: str) -> dict[str, Any]:
        return strategies.setdefault(
            name,
            {
                "strategy": name,
                "signals": 0,
                "passed": 0,
                "blocked": 0,
                "trades": 0,
                "wins": 0,
                "win_rate": None,
                "paper_pnl": ZERO,
                "blocked_closed": 0,
                "blocked_opportunity_cost": ZERO,
            },
        )

    for row in counts:
        by_state[row["state"]] = by_state.get(row["state"], 0) + row["count"]
        line = strategy_row(row["strategy"])
        line["signals"] += row["count"]
        if row["state"] in PASSED:
            line["passed"] += row["count"]
        elif row["state"] == SignalState.BLOCKED:
            line["blocked"] += row["count"]

    for row in _paper_by_strategy(book, filters):
        line = strategy_row(row["strategy"])
        line["trades"] = row["trades"]
        line["wins"] = row["wins"]
        line["win_rate"] = rate(row["wins"] / row["trades"]) if row["trades"] else None
        line["paper_pnl"] = _exact(row["pnl"])

    opportunity = ZERO
    blocked_closed = blocked_open = 0
    for row in _blocked_by_strategy(book, filters):
        line = strategy_row(row["strategy"])
        line["blocked_closed"] = row["closed"]
        line["blocked_opportunity_cost"] = _exact(row["pnl"])
        opportunity += _exact(row["pnl"])
        blocked_closed += row["closed"]
        blocked_open += row["open"]

    # The closed trades' P&L and exit time as two columns for analytics.metrics.
    pnl_column: list[float] = []
    exit_column: list[int] = []
    closes = _closed_paper(book, filters).order_by("exit_time", "id")
    for pnl, exit_time in closes.values_list("pnl", "exit_time"):
        if pnl is None or exit_time is None:
            continue  # excluded by the query; the columns are nullable
        pnl_column.append(float(pnl))
        exit_column.append(ms_from_utc(exit_time))
    stats = trade_stats(pnl_column, exit_column)
    paper_pnl = sum((line["paper_pnl"] for line in strategies.values()), ZERO)

    effects = guard_effectiveness(book=book, since=filters.since, until=filters.until)
    skills = book_skill(
        book=book,
        keys=[(effect.guard, effect.book_guard_id) for effect in effects],
        min_samples=verdict_min_samples(),
        since=filters.since,
        until=filters.until,
    )
    guards = []
    for effect in effects:
        honest = skills.every[(effect.guard, effect.book_guard_id)]
        guards.append(
            {
                "guard": effect.guard,
                "version": effect.version,
                "blocked": effect.blocked,
                "sole_blocked": effect.sole_blocked,
                "evaluated": effect.outcome.evaluated,
                "shadow_pnl": cents(effect.outcome.shadow_pnl),
                "net_impact": cents(effect.outcome.net_impact),
                "volume": cents(honest.decomposition.volume),
                "selection": cents(honest.decomposition.selection),
                "sole_net_impact": cents(effect.sole_outcome.net_impact),
                "mean_net_impact": cents(effect.outcome.mean_net_impact),
                "interval_low": cents(honest.ci_low),
                "interval_high": cents(honest.ci_high),
                "p_value": probability(honest.p_value),
                "q_value": probability(honest.q_value),
                "verdict": honest.verdict,
            }
        )

    return json_clean(
        {
            "book": {"id": book.pk, "name": book.name, "kind": book.kind},
            "currency": currency,
            "period": filters.period,
            "period_label": PERIOD_LABELS.get(filters.period, filters.period),
            "since": _iso(filters.since),
            "until": _iso(filters.until),
            "clock": _iso(filters.clock),
            "generated_at": _iso(now or timezone.now()),
            "sign_convention": SIGN_CONVENTION,
            "headline": {
                "paper_pnl": cents(paper_pnl),
                "trades": stats.trades,
                "wins": stats.wins,
                "losses": stats.losses,
                "win_rate": rate(stats.win_rate),
                "profit_factor": ratio(stats.profit_factor),
                # From the exact sum, as the pages compute it: one rounding everywhere.
                "expectancy": cents(paper_pnl / stats.trades) if stats.trades else None,
                "max_drawdown": cents(stats.max_drawdown),
                "sharpe": ratio(stats.sharpe),
                "signals": sum(by_state.values()),
                "signals_by_state": by_state,
                "blocked_closed": blocked_closed,
                "blocked_open": blocked_open,
                "blocked_opportunity_cost": cents(opportunity),
                "guards_net_impact": cents(-opportunity),
            },
            "guards": guards,
            "strategies": [
                {
                    **line,
                    "paper_pnl": cents(line["paper_pnl"]),
                    "blocked_opportunity_cost": cents(line["blocked_opportunity_cost"]),
                }
                for _, line in sorted(strategies.items())
            ],
        }
    )


# --- Rendering -------------------------------------------------------------------------

HEADLINE_ROWS = (
    ("paper_pnl", "Paper P&L", "money"),
    ("trades", "Closed paper trades", "count"),
    ("wins", "Winning trades", "count"),
    ("losses", "Losing trades", "count"),
    ("win_rate", "Win rate", "ratio"),
    ("profit_factor", "Profit factor", "ratio"),
    ("expectancy", "Expectancy per trade", "money"),
    ("max_drawdown", "Max drawdown", "money"),
    ("sharpe", "Sharpe (daily, annualised)", "ratio"),
    ("signals", "Signals", "count"),
    ("blocked_closed", "Blocked signals with a closed shadow trade", "count"),
    ("blocked_open", "Blocked signals with an open shadow trade", "count"),
    ("blocked_opportunity_cost", "Blocked opportunity cost", "money"),
    ("guards_net_impact", "Guards' net impact", "money"),
)
GUARD_COLUMNS = (
    ("guard", "Guard"),
    ("version", "Version"),
    ("blocked", "Blocked"),
    ("sole_blocked", "Blocked alone"),
    ("evaluated", "Closed shadow trades"),
    ("shadow_pnl", "Shadow P&L"),
    ("net_impact", "Net impact"),
    ("volume", "Trading less"),
    ("selection", "Choosing"),
    ("sole_net_impact", "Net impact alone"),
    ("mean_net_impact", "Mean net impact per trade"),
    ("interval_low", "95% interval low"),
    ("interval_high", "95% interval high"),
    ("p_value", "Beats random p"),
    ("q_value", "Beats random q (BH)"),
    ("verdict", "Verdict"),
)
STRATEGY_COLUMNS = (
    ("strategy", "Strategy"),
    ("signals", "Signals"),
    ("passed", "Passed the guards"),
    ("blocked", "Blocked"),
    ("trades", "Closed paper trades"),
    ("wins", "Winning trades"),
    ("win_rate", "Win rate"),
    ("paper_pnl", "Paper P&L"),
    ("blocked_closed", "Closed shadow trades of blocked signals"),
    ("blocked_opportunity_cost", "Blocked opportunity cost"),
)
MONEY_COLUMNS = {
    "shadow_pnl",
    "net_impact",
    "sole_net_impact",
    "mean_net_impact",
    "interval_low",
    "interval_high",
    "paper_pnl",
    "blocked_opportunity_cost",
}


def render_json(data: dict[str, Any]) -> str:
    """The report as indented JSON (amounts as decimal strings, like the pages' twins)."""
    return json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False) + "\n"


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def render_csv(data: dict[str, Any]) -> str:
    """The report as CSV: one table per section (headline, states, guards, strategies),
    separated by a blank line, each with its own header whose first column is
    ``section``. Money columns name the currency in their header."""
    currency = data["currency"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "figure", "value", "unit"])
    headline = data["headline"]
    for key, label, kind in HEADLINE_ROWS:
        unit = currency if kind == "money" else kind
        writer.writerow(["headline", key, label, _cell(headline[key]), unit])
    for state, count in headline["signals_by_state"].items():
        writer.writerow(["signals_by_state", state, f"Signals {state}", count, "count"])

    def table(section: str, columns: tuple[tuple[str, str], ...], rows: list[dict]) -> None:
        writer.writerow([])
        writer.writerow(
            ["section"]
            + [f"{label} ({currency})" if key in MONEY_COLUMNS else label for key, label in columns]
        )
        for row in rows:
            writer.writerow([section] + [_cell(row[key]) for key, _ in columns])

    table("guards", GUARD_COLUMNS, data["guards"])
    table("strategies", STRATEGY_COLUMNS, data["strategies"])
    return out.getvalue()


def render_html(data: dict[str, Any]) -> str:
    """The report as one standalone, printable HTML document (its CSS embedded: it is a
    file to keep, served as an attachment)."""
    headline = data["headline"]
    return render_to_string(
        "analytics/reports/report.html",
        {
            "report": data,
            "currency": data["currency"],
            "headline": headline,
            "headline_rows": [
                {"label": label, "value": headline[key], "kind": kind, "key": key}
                for key, label, kind in HEADLINE_ROWS
            ],
        },
    )


RENDERERS = {"html": render_html, "json": render_json, "csv": render_csv}


def render(data: dict[str, Any], fmt: str) -> str:
    """``data`` in format ``fmt`` (one of ``FORMATS``)."""
    return RENDERERS[fmt](data)


def stored_summary(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the JSON a Report keeps (and a JSON download serves)."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


# --- Storing ---------------------------------------------------------------------------


def report_store(
    *, book: Book, period: str, created_by: str, data: dict[str, Any] | None = None
) -> Report:
    """Store the report of ``book`` over ``period`` in every format; a new row."""
    data = data if data is not None else report_data(book=book, period=period)
    return Report.objects.create(
        book=book,
        period=data["period"],
        created_by=created_by,
        summary=stored_summary(data),
        html=render_html(data),
        csv=render_csv(data),
    )


def daily_report_store(*, book: Book, now: datetime | None = None) -> tuple[Report, bool]:
    """The daily report of ``book`` over the last day, stored once per book and UTC day:
    a second run the same day replaces the figures of that day's row (so a rerun after a
    late candle gives the fresh numbers) instead of adding one. Returns (report, created)."""
    now = now or timezone.now()
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    data = report_data(book=book, period=DAILY_PERIOD, now=now)
    fields = {
        "summary": stored_summary(data),
        "html": render_html(data),
        "csv": render_csv(data),
    }
    with transaction.atomic():
        # Two runs of the task at once: the book row lock makes the second wait and then
        # find the first one's report.
        Book.objects.select_for_update().filter(pk=book.pk).first()
        existing = (
            Report.objects.filter(
                book=book,
                period=DAILY_PERIOD,
                created_by=DAILY_CREATOR,
                created_at__gte=day_start,
            )
            .order_by("-created_at", "-id")
            .first()
        )
        if existing is not None:
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.save(update_fields=list(fields))
            return existing, False
        report = Report.objects.create(
            book=book, period=DAILY_PERIOD, created_by=DAILY_CREATOR, **fields
        )
        return report, True


@shared_task(name="analytics.daily_report", base=WorkTask)
def daily_report() -> dict[str, Any]:
    """Store the last day's report of every live book with signals (one per book and UTC
    day; a rerun replaces it). Returns the report ids per book name."""
    now = timezone.now()
    books = Book.objects.filter(
        Exists(Signal.objects.filter(book=OuterRef("pk"))), kind=Book.Kind.LIVE
    ).order_by("name")
    stored: dict[str, int] = {}
    for book in books:
        report, created = daily_report_store(book=book, now=now)
        headline = report.summary["headline"]
        currency = report.summary["currency"]
        logger.info(
            "[REPORT] book=%s period=%s report=%d %s paper_pnl=%s %s trades=%d signals=%d "
            "blocked_opportunity_cost=%s %s",
            book.name,
            DAILY_PERIOD,
            report.pk,
            "stored" if created else "replaced",
            headline["paper_pnl"],
            currency,
            headline["trades"],
            headline["signals"],
            headline["blocked_opportunity_cost"],
            currency,
        )
        stored[book.name] = report.pk
    if not stored:
        logger.info("[REPORT] no live book with signals: no daily report")
    return {"generated_at": now.isoformat(), "reports": stored}
