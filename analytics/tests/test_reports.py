"""Reports: the figures against a plain reference from the rows, the three formats
agreeing, ``manage.py report``, the daily task and the downloads."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.template import Context, Template
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.filters import parse_filters
from analytics.models import Report
from analytics.numbers import rate, ratio
from analytics.reports import (
    DAILY_CREATOR,
    daily_report,
    render_csv,
    render_html,
    render_json,
    report_data,
    stored_summary,
)
from analytics.templatetags.trader import money, signed_money
from analytics.tests.factories import (
    BookFactory,
    PaperTradeFactory,
    SignalFactory,
    decided_signal,
)
from shadow.models import ShadowTrade
from signals.models import Book, GuardDecision, PaperTrade, SignalState

pytestmark = pytest.mark.django_db

CENT = Decimal("0.01")
PASSED = {"approved", "executed", "failed", "expired", "closed"}


def _cents(value) -> Decimal:
    return Decimal(value).quantize(CENT)


def _inside(moment, since, until) -> bool:
    if since is None and until is None:
        return True
    return (
        moment is not None
        and (since is None or moment >= since)
        and (until is None or moment < until)
    )


def reference(book: Book, period: str) -> dict:
    """The report's figures computed the plain way: iterate the rows and add them up."""
    filters = parse_filters({"book": str(book.pk), "period": period})
    since, until = filters.since, filters.until
    closes = sorted(
        (
            trade
            for trade in PaperTrade.objects.filter(book=book).select_related(
                "signal__book_strategy", "signal__strategy_config"
            )
            if trade.status == "closed"
            and trade.pnl is not None
            and trade.exit_time is not None
            and _inside(trade.exit_time, since, until)
        ),
        key=lambda trade: (trade.exit_time, trade.id),
    )
    pnl = sum((trade.pnl for trade in closes), Decimal(0))
    wins = [trade for trade in closes if trade.pnl > 0]
    gross_profit = sum((t.pnl for t in closes if t.pnl > 0), Decimal(0))
    gross_loss = -sum((t.pnl for t in closes if t.pnl < 0), Decimal(0))
    equity = peak = drawdown = Decimal(0)
    for trade in closes:
        equity += trade.pnl
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    states = {state.value: 0 for state in SignalState}
    for signal in book.signals.all():
        if _inside(signal.candle_time, since, until):
            states[signal.state] += 1
    blocked = [
        shadow
        for shadow in ShadowTrade.objects.filter(book=book, group="blocked")
        if shadow.status == "closed"
        and shadow.pnl is not None
        and _inside(shadow.exit_time, since, until)
    ]
    opportunity = sum((shadow.pnl for shadow in blocked), Decimal(0))
    guards: dict[tuple, dict] = {}
    for decision in GuardDecision.objects.filter(signal__book=book, verdict="block").select_related(
        "signal__shadow_trade", "book_guard"
    ):
        version = decision.book_guard.config_version if decision.book_guard else None
        line = guards.setdefault((decision.guard, version), {"blocked": 0, "net_impact": 0})
        if _inside(decision.signal.candle_time, since, until):
            line["blocked"] += 1
        shadow = getattr(decision.signal, "shadow_trade", None)
        if (
            shadow is not None
            and shadow.status == "closed"
            and shadow.pnl is not None
            and _inside(shadow.exit_time, since, until)
        ):
            line["net_impact"] -= shadow.pnl
    strategies: dict[str, Decimal] = {}
    for trade in closes:
        name = (
            trade.signal.book_strategy.name
            if trade.signal.book_strategy
            else trade.signal.strategy_config.name
        )
        strategies[name] = strategies.get(name, Decimal(0)) + trade.pnl
    return {
        "paper_pnl": _cents(pnl),
        "trades": len(closes),
        "wins": len(wins),
        "win_rate": rate(len(wins) / len(closes)) if closes else None,
        "profit_factor": ratio(gross_profit / gross_loss) if gross_loss else None,
        "max_drawdown": _cents(drawdown),
        "states": states,
        "opportunity": _cents(opportunity),
        "guards": {key: (v["blocked"], _cents(v["net_impact"])) for key, v in guards.items()},
        "strategies": {name: _cents(value) for name, value in strategies.items()},
    }


def _check_against_reference(data: dict, expected: dict) -> None:
    headline = data["headline"]
    assert headline["paper_pnl"] == expected["paper_pnl"]
    assert headline["trades"] == expected["trades"]
    assert headline["wins"] == expected["wins"]
    assert headline["win_rate"] == expected["win_rate"]
    assert headline["profit_factor"] == expected["profit_factor"]
    assert headline["max_drawdown"] == expected["max_drawdown"]
    assert headline["signals_by_state"] == expected["states"]
    assert headline["signals"] == sum(expected["states"].values())
    assert headline["blocked_opportunity_cost"] == expected["opportunity"]
    assert headline["guards_net_impact"] == -expected["opportunity"]
    got_guards = {
        (g["guard"], g["version"]): (g["blocked"], g["net_impact"]) for g in data["guards"]
    }
    for key, figures in expected["guards"].items():
        assert got_guards[key] == figures, key
    got_strategies = {s["strategy"]: s["paper_pnl"] for s in data["strategies"] if s["trades"]}
    assert got_strategies == expected["strategies"]


@pytest.mark.parametrize("period", ["all", "7d"])
def test_it_reports_the_replayed_books_figures_to_the_cent(replayed_book, period):
    data = report_data(book=replayed_book, period=period)
    expected = reference(replayed_book, period)
    # The replay must give the test something to check.
    assert expected["trades"] > 0 and expected["states"]["blocked"] > 0
    _check_against_reference(data, expected)
    assert data["currency"] == "USD"
    assert data["period"] == period


def test_it_reports_hand_made_rows_exactly():
    book = BookFactory(name="hand")
    decided_signal(book, blocked_by=["cooldown"], pnl="12.345")  # rounds to 12.35 in total
    decided_signal(book, blocked_by=["cooldown", "max_open"], pnl="-40.10")
    decided_signal(book, blocked_by=["max_open"], pnl="3.005")
    for hour, value in enumerate(("100.00", "-30.50", "-19.50", "25.25")):
        PaperTradeFactory(
            signal=SignalFactory(book=book, state=SignalState.CLOSED),
            pnl=Decimal(value),
            exit_time=datetime(2024, 1, 2, tzinfo=UTC) + timedelta(hours=hour),
        )
    data = report_data(book=book, period="all")
    headline = data["headline"]
    assert headline["paper_pnl"] == Decimal("75.25")
    assert headline["trades"] == 4 and headline["wins"] == 2
    assert headline["win_rate"] == 0.5
    assert headline["profit_factor"] == 2.51  # 2.505, half up
    assert headline["max_drawdown"] == Decimal("50.00")  # 100 down to 50
    # Opportunity cost 12.345 - 40.10 + 3.005 = -24.75: the blocks avoided a loss.
    assert headline["blocked_opportunity_cost"] == Decimal("-24.75")
    assert headline["guards_net_impact"] == Decimal("24.75")
    guards = {g["guard"]: g for g in data["guards"]}
    assert guards["cooldown"]["net_impact"] == Decimal("27.76")  # -(12.345 - 40.10)
    assert guards["cooldown"]["sole_blocked"] == 1
    assert guards["max_open"]["net_impact"] == Decimal("37.10")  # -(-40.10 + 3.005)
    assert headline["signals_by_state"]["blocked"] == 3
    assert headline["signals_by_state"]["closed"] == 4
    _check_against_reference(data, reference(book, "all"))


def test_it_reads_a_fixed_number_of_queries_whatever_the_number_of_signals(replayed_book):
    small = BookFactory(name="small")
    decided_signal(small, blocked_by=["cooldown"], pnl="1")
    # Rows written outside the engine: the first read rebuilds the book's rollups.
    report_data(book=small, period="all")
    with CaptureQueriesContext(connection) as few:
        report_data(book=small, period="all")
    with CaptureQueriesContext(connection) as many:
        report_data(book=replayed_book, period="all")
    assert replayed_book.signals.count() > 10 * small.signals.count()
    assert len(many) <= len(few) + 1  # the replay's guards are frozen per book: one more read
    # 18: the book, its clock, its rollups' state, and the guards' figures read from them.
    assert len(many) <= 18


def test_it_renders_the_same_numbers_in_json_csv_and_html(replayed_book):
    data = report_data(book=replayed_book, period="all")
    as_json = json.loads(render_json(data))
    assert as_json == stored_summary(data)
    headline = as_json["headline"]
    assert headline["paper_pnl"] == str(data["headline"]["paper_pnl"])

    tables = [
        list(csv.DictReader(io.StringIO(block)))
        for block in render_csv(data).split("\n\n")
        if block.strip()
    ]
    figures, guards, strategies = tables
    values = {row["key"]: row for row in figures if row["section"] == "headline"}
    for key in ("paper_pnl", "max_drawdown", "blocked_opportunity_cost", "guards_net_impact"):
        assert values[key]["value"] == headline[key]
        assert values[key]["unit"] == "USD"
    assert int(values["trades"]["value"]) == headline["trades"]
    states = {
        row["key"]: int(row["value"]) for row in figures if row["section"] == "signals_by_state"
    }
    assert states == headline["signals_by_state"]
    assert [row["Net impact (USD)"] for row in guards] == [
        g["net_impact"] for g in as_json["guards"]
    ]
    assert [row["Blocked"] for row in guards] == [str(g["blocked"]) for g in as_json["guards"]]
    assert [row["Paper P&L (USD)"] for row in strategies] == [
        s["paper_pnl"] for s in as_json["strategies"]
    ]
    assert {row["section"] for row in guards} == {"guards"}

    html = render_html(data)
    currency = "USD"
    assert signed_money(data["headline"]["paper_pnl"], currency) in html
    assert money(data["headline"]["max_drawdown"], currency) in html
    assert signed_money(data["headline"]["blocked_opportunity_cost"], currency) in html
    for guard in data["guards"]:
        assert signed_money(guard["net_impact"], currency) in html
    assert "positive means the guard saved money" in html
    assert 'style="' not in html and "<script" not in html


def test_it_writes_the_file_and_stores_the_report(replayed_book, tmp_path):
    target = tmp_path / "report.csv"
    err = io.StringIO()
    call_command(
        "report",
        "--book",
        replayed_book.name,
        "--period",
        "30d",
        "--format",
        "csv",
        "--output",
        str(target),
        stdout=io.StringIO(),
        stderr=err,
    )
    report = Report.objects.get()
    assert report.created_by == "command" and report.period == "30d"
    assert target.read_text() == report.csv
    assert f"#{report.pk}" in err.getvalue()
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left


def test_it_prints_json_on_stdout_and_keeps_nothing_with_no_store(replayed_book):
    out = io.StringIO()
    call_command(
        "report", "--book", replayed_book.name, "--format", "json", "--no-store", stdout=out
    )
    printed = json.loads(out.getvalue())
    assert printed["book"]["name"] == replayed_book.name
    assert printed["period"] == "7d"
    assert not Report.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--book", "nope"], "no book named 'nope'"),
        (["--book", "hand", "--period", "2w"], "--period '2w' is not one of 1d, 7d"),
        (["--book", "hand", "--format", "pdf"], "--format 'pdf' is not one of html, json, csv"),
    ],
)
def test_it_refuses_bad_arguments_with_a_clear_message(arguments, message):
    BookFactory(name="hand")
    with pytest.raises(CommandError, match=re.escape(message)) as error:
        call_command("report", *arguments, stdout=io.StringIO())
    assert error.value.returncode != 0  # what manage.py exits with
    assert not Report.objects.exists()


def test_manage_py_exits_non_zero_on_a_bad_format(settings):
    finished = subprocess.run(
        [sys.executable, "manage.py", "report", "--book", "any", "--format", "pdf"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert "--format 'pdf' is not one of html, json, csv" in finished.stderr
    assert finished.stdout == ""


def test_it_refuses_an_unwritable_output_and_leaves_nothing_behind(tmp_path):
    book = BookFactory(name="hand")
    decided_signal(book, blocked_by=["cooldown"], pnl="1")
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("keep me")
    with pytest.raises(CommandError, match="cannot write the report to"):
        call_command("report", "--book", "hand", "--output", str(not_a_directory / "r.html"))
    a_directory = tmp_path / "folder"
    a_directory.mkdir()
    with pytest.raises(CommandError, match="cannot write the report to"):
        call_command("report", "--book", "hand", "--output", str(a_directory))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "plain-file"]
    assert list(a_directory.iterdir()) == []
    assert not_a_directory.read_text() == "keep me"
    assert not Report.objects.exists()


def _blocked_and_closed(book: Book, pnl: str) -> None:
    """A blocked signal whose shadow trade closed on its own candle (inside the last day)."""
    signal = decided_signal(book, blocked_by=["cooldown"], pnl=pnl)
    ShadowTrade.objects.filter(signal=signal).update(exit_time=signal.candle_time)


def test_the_daily_task_stores_one_report_per_live_book_with_signals_once_a_day(caplog):
    first, second = BookFactory(name="live a", kind="live"), BookFactory(name="live b", kind="live")
    BookFactory(name="live empty", kind="live")
    replay = BookFactory(name="a replay")
    for book in (first, second, replay):
        _blocked_and_closed(book, "-5")
    with caplog.at_level("INFO", logger="analytics.reports"):
        result = daily_report.apply().get()
    assert set(result["reports"]) == {"live a", "live b"}
    reports = Report.objects.filter(created_by=DAILY_CREATOR)
    assert sorted(r.book.name for r in reports) == ["live a", "live b"]
    assert {r.period for r in reports} == {"1d"}
    lines = [r.getMessage() for r in caplog.records if "[REPORT]" in r.getMessage()]
    assert len(lines) == 2 and "book=live a" in lines[0]

    _blocked_and_closed(first, "-7")
    again = daily_report.apply().get()
    assert again["reports"] == result["reports"]  # the same rows, replaced
    assert Report.objects.filter(created_by=DAILY_CREATOR).count() == 2
    refreshed = Report.objects.get(book=first)
    assert refreshed.summary["headline"]["blocked_opportunity_cost"] == "-12.00"


def test_the_daily_task_is_registered_on_the_worker():
    from config.celery import app

    app.loader.import_default_modules()
    assert "analytics.daily_report" in app.tasks


@pytest.fixture
def stored_report():
    book = BookFactory(name="My Book / 2024")
    decided_signal(book, blocked_by=["cooldown"], pnl="-5")
    call_command(
        "report", "--book", book.name, "--period", "all", stdout=io.StringIO(), stderr=io.StringIO()
    )
    return Report.objects.get()


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("html", "text/html; charset=utf-8"),
        ("json", "application/json"),
        ("csv", "text/csv; charset=utf-8"),
    ],
)
def test_it_downloads_a_stored_report_as_an_attachment(
    trader_client, stored_report, fmt, content_type
):
    response = trader_client.get(reverse("analytics:report-download", args=[stored_report.pk, fmt]))
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    day = f"{stored_report.created_at:%Y-%m-%d}"
    assert response["Content-Disposition"] == (
        f'attachment; filename="report-my-book-2024-all-{day}.{fmt}"'
    )
    body = response.content.decode()
    if fmt == "json":
        assert json.loads(body) == stored_report.summary
    else:
        assert body == getattr(stored_report, fmt)


def test_downloads_need_a_login_and_answer_404_for_unknown_reports_and_formats(
    trader_client, stored_report
):
    url = reverse("analytics:report-download", args=[stored_report.pk, "csv"])
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    missing = reverse("analytics:report-download", args=[stored_report.pk + 1, "csv"])
    assert trader_client.get(missing).status_code == 404
    bad_format = reverse("analytics:report-download", args=[stored_report.pk, "pdf"])
    assert trader_client.get(bad_format).status_code == 404


def test_the_card_lists_the_last_reports_with_their_downloads(
    stored_report, django_assert_num_queries
):
    template = Template("{% load reports %}{% recent_reports book %}")
    book = stored_report.book
    with django_assert_num_queries(1):
        html = template.render(Context({"book": book}))
    for fmt in ("html", "json", "csv"):
        assert reverse("analytics:report-download", args=[stored_report.pk, fmt]) in html
    assert "python manage.py report --book &#x27;My Book / 2024&#x27; --period 7d" in html
    empty = template.render(Context({"book": BookFactory(name="other")}))
    assert "No stored report for this book yet" in empty
    assert "/reports/" not in empty
