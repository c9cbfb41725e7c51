"""The page benchmark's quick mode: its generator at a tiny size writes a consistent book
with its rollups, its hand-written SQL gives the figures a plain Python sum of the rows
gives, which the selectors, the pages' JSON twins and the bare reads of the rollups give
too (to the cent); its live write moves the book's stamp and leaves its rollups equal to a
rebuild."""

from collections import Counter, defaultdict
from datetime import UTC, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.db.models import Count, F

from analytics.filters import book_clock
from analytics.models import EquitySegment
from analytics.pages import PAGES, load_pages
from analytics.selectors import book_summary, guard_effectiveness, opportunity_cost
from analytics.skill import clustered_mean_interval
from analytics.stamps import book_stamp
from benchmarks import pages_match, pages_sql
from benchmarks.pages_data import GUARDS, generate
from shadow import rollups
from shadow.models import BookRollup, ShadowTrade
from signals.domain.engine import INSUFFICIENT_BALANCE
from signals.models import (
    Book,
    BookState,
    GuardDecision,
    PaperTrade,
    Signal,
    SignalTransition,
)

pytestmark = pytest.mark.django_db

SIGNALS = 600
DECIDED = ("approved", "executed", "failed", "expired", "closed", "blocked")


def cent(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture
def bench_book():
    generated = generate(signals=SIGNALS, seed=3, book_name="bench test")
    book = Book.objects.get(pk=generated.book_id)
    return generated, book, book_clock(book)


def test_generated_book_is_consistent(bench_book):
    generated, book, _clock = bench_book
    signals = Signal.objects.filter(book=book)
    assert signals.count() == SIGNALS == generated.signals
    states = Counter(signals.values_list("state", flat=True))
    decided = sum(states[s] for s in DECIDED)
    assert 0.30 < (decided - states["blocked"]) / SIGNALS < 0.50  # passed ~40 %
    assert 0.45 < states["blocked"] / SIGNALS < 0.65  # blocked ~55 %
    assert states["rejected"] > 0

    per_signal = signals.annotate(n=Count("decisions"))
    assert not per_signal.filter(state__in=DECIDED).exclude(n=GUARDS).exists()
    assert not per_signal.exclude(state__in=DECIDED).exclude(n=0).exists()
    assert GuardDecision.objects.filter(signal__book=book).count() == decided * GUARDS
    blocks = Counter(
        GuardDecision.objects.filter(signal__book=book, verdict="block").values_list(
            "signal__state", flat=True
        )
    )
    assert set(blocks) == {"blocked"}
    assert not signals.filter(state="blocked").exclude(decisions__verdict="block").exists()
    assert not GuardDecision.objects.filter(signal__book=book, observed_value=None).exists()

    shadow = ShadowTrade.objects.filter(book=book)
    assert shadow.count() == decided == generated.shadow_trades
    assert set(shadow.values_list("signal__state", flat=True)) <= set(DECIDED)
    assert shadow.filter(group="blocked").count() == states["blocked"]
    paper = PaperTrade.objects.filter(book=book)
    assert set(paper.values_list("signal__state", flat=True)) == {"closed", "executed", "expired"}
    assert paper.count() == states["closed"] + states["executed"] + states["expired"]
    closed = shadow.filter(status="closed")
    assert closed.filter(pnl__gt=0).exists() and closed.filter(pnl__lt=0).exists()
    exits = closed.values_list("exit_time", flat=True)
    assert max(exits) - min(exits) > timedelta(days=150)
    # A paper trade's outcome is its control shadow trade's.
    for trade in paper.filter(status="closed").select_related("signal__shadow_trade")[:20]:
        assert trade.pnl == trade.signal.shadow_trade.pnl


def test_generated_book_has_its_rollups_as_a_rebuild_makes_them(bench_book):
    generated, book, _clock = bench_book
    assert rollups.is_built(book.pk)
    stored = rollups.stored(book.pk)
    assert len(stored) == generated.rollup_rows == BookRollup.objects.filter(book=book).count()
    assert {row[1] for row in stored} == set(BookRollup.Fact.values)  # (grain, fact, ...)
    assert {row[0] for row in stored} == set(BookRollup.Grain.values)
    rollups.rebuild(book.pk)
    assert rollups.stored(book.pk) == stored


def _drawdown_and_sharpe(trades: list) -> tuple:
    """Plainly: (exit time, kind, id, pnl) rows -> max drawdown of the running sum in that
    order below its peak (from 0), and the annualised Sharpe of zero-filled daily P&L."""
    import math
    import statistics

    equity = peak = 0.0
    drawdown = 0.0
    days: dict = defaultdict(float)
    for exit_time, _kind, _id, pnl in sorted(trades):
        equity += float(pnl)
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
        days[int(exit_time.timestamp() * 1000) // 86_400_000] += float(pnl)
    sharpe = None
    if days:
        series = [days.get(day, 0.0) for day in range(min(days), max(days) + 1)]
        if len(series) >= 2 and statistics.stdev(series) > 0:
            sharpe = statistics.mean(series) / statistics.stdev(series) * math.sqrt(365)
    return cent(Decimal(str(drawdown))), half_up(sharpe, 2)


def half_up(value, places: int):
    if value is None:
        return None
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _with_stats(row: dict, guarded: list, unguarded: list) -> dict:
    for name, trades in (("guarded", guarded), ("unguarded", unguarded)):
        row[f"{name}_max_drawdown"], row[f"{name}_sharpe"] = _drawdown_and_sharpe(trades)
        # Profit factor (gross profit over gross loss) and win rate, exactly.
        pnl = [trade[3] for trade in trades]
        loss = -sum((p for p in pnl if p < 0), Decimal(0))
        profit = sum((p for p in pnl if p > 0), Decimal(0))
        row[f"{name}_profit_factor"] = half_up(profit / loss, 2) if loss else None
        wins = sum(p > 0 for p in pnl)
        row[f"{name}_win_rate"] = half_up(Decimal(wins) / len(pnl), 3) if pnl else None
    return row


def reference(book: Book, clock) -> dict:
    """The figures by iterating the rows and summing in Python."""
    decisions = list(
        GuardDecision.objects.filter(signal__book=book, verdict="block").values_list(
            "signal_id", "guard"
        )
    )
    blockers = Counter(signal for signal, _ in decisions)
    shadow = {
        t.signal_id: t
        for t in ShadowTrade.objects.filter(book=book).select_related("signal__book_strategy")
    }
    guards: dict = defaultdict(lambda: defaultdict(Decimal))
    for signal, guard in decisions:
        row = guards[guard]
        row["blocked"] += 1
        row["sole_blocked"] += blockers[signal] == 1
        trade = shadow.get(signal)
        if trade is not None and trade.status == "closed" and trade.pnl is not None:
            row["evaluated"] += 1
            row["shadow_pnl"] += trade.pnl
            if blockers[signal] == 1:
                row["sole_shadow_pnl"] += trade.pnl
    blocked_closed = [
        t for t in shadow.values() if t.group == "blocked" and t.status == "closed" and t.pnl
    ]
    by_strategy: dict = defaultdict(Decimal)
    by_day: dict = defaultdict(Decimal)
    for t in blocked_closed:
        by_strategy[t.signal.book_strategy.name] += t.pnl
        by_day[t.exit_time.date().isoformat()] += t.pnl
    strategies: dict = defaultdict(
        lambda: {"signals": 0, "trades": 0, "wins": 0, "pnl": Decimal(0)}
    )
    papers = {p.signal_id: p for p in PaperTrade.objects.filter(book=book)}
    signals = list(Signal.objects.filter(book=book).select_related("book_strategy"))
    for s in signals:
        row = strategies[s.book_strategy.name]
        row["signals"] += 1
        p = papers.get(s.pk)
        if p is not None and p.status == "closed":
            row["trades"] += 1
            row["wins"] += p.pnl > 0
            row["pnl"] += p.pnl
    until = clock + timedelta(microseconds=1)
    periods = {}
    for name, span in pages_sql.PERIODS.items():
        since = until - span
        closed_paper = [
            p for p in papers.values() if p.status == "closed" and since <= p.exit_time < until
        ]
        periods[name] = {
            "signals": sum(since <= s.candle_time < until for s in signals),
            "blocked": sum(
                since <= s.candle_time < until and s.state == "blocked" for s in signals
            ),
            "trades": len(closed_paper),
            "pnl": cent(sum((p.pnl for p in closed_paper), Decimal(0))),
            "opportunity_cost": cent(
                sum((t.pnl for t in blocked_closed if since <= t.exit_time < until), Decimal(0))
            ),
        }
    closed_paper = [p for p in papers.values() if p.status == "closed"]
    strategy_of = {sig.pk: sig.book_strategy.name for sig in signals}
    # The best and worst strategy (paper P&L) and guard (net impact: minus the shadow P&L
    # of the blocked signals it blocked) per period, as the summary picks them.
    state_of = {sig.pk: sig.state for sig in signals}
    for name, span in pages_sql.PERIODS.items():
        since = until - span
        picks: dict = {"strategy": defaultdict(list), "guard": defaultdict(list)}
        for p in closed_paper:
            if p.pnl is not None and since <= p.exit_time < until:
                picks["strategy"][strategy_of[p.signal_id]].append(p.pnl)
        for signal, guard in decisions:
            t = shadow.get(signal)
            if (
                t is not None
                and t.group == "blocked"
                and state_of[signal] == "blocked"
                and t.status == "closed"
                and t.pnl is not None
                and since <= t.exit_time < until
            ):
                picks["guard"][guard].append(-t.pnl)
        for kind, money in (("strategy", "pnl"), ("guard", "net_impact")):
            ranked = sorted(
                ((-sum(v, Decimal(0)), k, len(v)) for k, v in picks[kind].items()),
            )
            item = [{"name": k, money: cent(-m), "trades": n} for m, k, n in ranked]
            periods[name][f"best_{kind}"] = item[0] if item else None
            periods[name][f"worst_{kind}"] = item[-1] if len(item) > 1 else None
    # The all-history expectancy: every closed shadow trade, its interval clustered by
    # UTC exit day (analytics.skill's).
    pool: dict = defaultdict(list)
    for t in shadow.values():
        if t.status == "closed" and t.pnl is not None and t.exit_time is not None:
            pool[t.exit_time.astimezone(UTC).date()].append(t.pnl)
    pooled = [pnl for day in pool.values() for pnl in day]
    interval = clustered_mean_interval(
        [len(day) for day in pool.values()], [float(sum(day)) for day in pool.values()]
    )
    # Signals failed for lack of paper balance (their "fail" transition says so).
    failed = {
        t.signal_id
        for t in SignalTransition.objects.filter(signal__book=book, name="fail")
        if str(t.payload.get("reason", "")).startswith(INSUFFICIENT_BALANCE)
        and state_of[t.signal_id] == "failed"
    }
    candle_of = {sig.pk: sig.candle_time for sig in signals}
    for name, span in pages_sql.PERIODS.items():
        periods[name]["balance_failed"] = sum(
            until - span <= candle_of[signal] < until for signal in failed
        )
    expectancy = {
        "trades": len(pooled),
        "mean_pnl": cent(sum(pooled, Decimal(0)) / len(pooled)),
        "low": cent(Decimal(interval.low)),
        "high": cent(Decimal(interval.high)),
    }
    paper_rows = [
        (strategy_of[p.signal_id], (p.exit_time, 0, p.pk, p.pnl))
        for p in closed_paper
        if p.pnl is not None
    ]
    shadow_rows = [
        (strategy_of[t.signal_id], (t.exit_time, 1, t.pk, t.pnl)) for t in blocked_closed
    ]
    for name, row in strategies.items():
        _with_stats(
            row,
            [t for n, t in paper_rows if n == name],
            [t for n, t in paper_rows + shadow_rows if n == name],
        )
    book_stats = _with_stats(
        {}, [t for _, t in paper_rows], [t for _, t in paper_rows + shadow_rows]
    )
    return {
        "guards": {
            "guards": {
                g: {
                    "blocked": int(r["blocked"]),
                    "sole_blocked": int(r["sole_blocked"]),
                    "evaluated": int(r["evaluated"]),
                    "shadow_pnl": cent(r["shadow_pnl"]),
                    "net_impact": -cent(r["shadow_pnl"]),
                    "sole_shadow_pnl": cent(r["sole_shadow_pnl"]),
                }
                for g, r in guards.items()
            }
        },
        "opportunity": {
            "total": cent(sum((t.pnl for t in blocked_closed), Decimal(0))),
            "closed": len(blocked_closed),
            "open": sum(t.group == "blocked" and t.status != "closed" for t in shadow.values()),
            "by_guard": {g: cent(r["shadow_pnl"]) for g, r in guards.items()},
            "by_strategy": {k: cent(v) for k, v in by_strategy.items()},
            "by_day": {k: cent(v) for k, v in by_day.items()},
        },
        "leaderboard": {
            "strategies": {k: {**v, "pnl": cent(v["pnl"])} for k, v in strategies.items()},
            "book": book_stats,
        },
        "summary": {
            "periods": periods,
            "expectancy": expectancy,
            "balance_failed": len(failed),
        },
        "trading": {
            "closed": len(closed_paper),
            "open": sum(p.status == "open" for p in papers.values()),
            "wins": sum(p.pnl > 0 for p in closed_paper),
            "pnl": cent(sum((p.pnl for p in closed_paper), Decimal(0))),
        },
    }


def short_of_balance(book: Book) -> int:
    """Some of the book's failed signals failed for lack of paper balance (the generator
    gives no reason): their count."""
    fails = SignalTransition.objects.filter(signal__book=book, signal__state="failed", name="fail")
    picked = list(fails.order_by("-signal__candle_time").values_list("pk", flat=True)[::3])
    fails.filter(pk__in=picked).update(payload={"reason": f"{INSUFFICIENT_BALANCE}: 12.5 USD"})
    return len(picked)


def test_hand_written_sql_gives_the_figures_of_the_rows(bench_book):
    _generated, book, clock = bench_book
    assert short_of_balance(book) > 0
    expected = reference(book, clock)
    assert expected["summary"]["balance_failed"] > 0
    with connection.cursor() as cursor:
        figures = {name: build(cursor, book.pk, clock) for name, build in pages_sql.FIGURES.items()}
    first_page = figures["trading"].pop("first_page")
    assert figures == expected
    assert len(first_page) == pages_sql.TRADES_PAGE
    latest = PaperTrade.objects.filter(book=book, status__in=("open", "closed")).order_by(
        "-exit_time", "-id"
    )
    assert first_page[0]["id"] in {t.pk for t in latest.filter(status="open")} | {
        latest.filter(status="closed").first().pk
    }

    # The selectors the pages read agree with the SQL.
    for effect in guard_effectiveness(book=book):
        row = figures["guards"]["guards"][effect.guard]
        assert (effect.blocked, effect.sole_blocked) == (row["blocked"], row["sole_blocked"])
        assert cent(effect.outcome.shadow_pnl) == row["shadow_pnl"]
        assert cent(effect.sole_outcome.shadow_pnl) == row["sole_shadow_pnl"]
    assert cent(opportunity_cost(book=book).total_pnl) == figures["opportunity"]["total"]
    assert cent(book_summary(book=book).paper_pnl) == figures["trading"]["pnl"]


def test_pages_json_shows_the_sql_figures(bench_book, trader_client):
    """Every page the SQL covers: its JSON twin answers, and where it shows those figures
    they equal the SQL's to the cent ("DIFFERS" fails)."""
    _generated, book, clock = bench_book
    short_of_balance(book)
    load_pages()
    with connection.cursor() as cursor:
        for name, build in pages_sql.FIGURES.items():
            if name not in PAGES:
                continue
            response = trader_client.get(f"/api/v1/{name}/", {"book": book.pk})
            assert response.status_code == 200, name
            verdict = pages_match.compare(
                name, response.json()["data"], build(cursor, book.pk, clock)
            )
            assert verdict in ("same", "page empty"), f"{name}: {verdict}"


def test_bare_rollup_reads_give_the_raw_sql_figures(bench_book):
    """Each converted page's rollup floor gives the raw SQL's figures (the part it
    covers), whole days and partial ones; a rollup row changed by a cent differs."""
    _generated, book, clock = bench_book
    short_of_balance(book)
    assert set(pages_sql.ROLLUP_FIGURES) == {"summary", "opportunity", "leaderboard"}
    with connection.cursor() as cursor:
        for name, rolled in pages_sql.ROLLUP_FIGURES.items():
            raw = pages_sql.FIGURES[name](cursor, book.pk, clock)
            assert pages_match.agree(name, rolled(cursor, book.pk, clock), raw) == "same", name
        periods = pages_sql.rollup_summary(cursor, book.pk, clock)["periods"]
        assert periods["30d"]["signals"] > periods["1d"]["signals"] > 0
        # A rollup row a cent off (the last paper day, in every window, and its month,
        # which the all-history leaderboard reads): seen.
        changed = []
        for grain in ("day", "month"):
            last = (
                BookRollup.objects.filter(book=book, fact="paper", grain=grain)
                .order_by("-day")
                .first()
            )
            BookRollup.objects.filter(pk=last.pk).update(pnl=last.pnl + Decimal("0.01"))
            changed.append(last)
        for name in ("summary", "leaderboard"):
            raw = pages_sql.FIGURES[name](cursor, book.pk, clock)
            verdict = pages_match.agree(
                name, pages_sql.ROLLUP_FIGURES[name](cursor, book.pk, clock), raw
            )
            assert verdict.startswith("DIFFERS"), name
        for last in changed:
            BookRollup.objects.filter(pk=last.pk).update(pnl=last.pnl)
    # The leaderboard's drawdown and Sharpe come from the equity segments the page reads:
    # a fall of the book's or its sum of squared days changed, seen.
    segments = EquitySegment.objects.filter(
        book=book, strategy_id__isnull=True, symbol="", series="guarded"
    )
    with connection.cursor() as cursor:
        raw = pages_sql.leaderboard(cursor, book.pk, clock)
        for change in ({"fall": F("fall") + 1000}, {"squares": F("squares") * 2}):
            assert (
                pages_match.agree(
                    "leaderboard", pages_sql.rollup_leaderboard(cursor, book.pk, clock), raw
                )
                == "same"
            )
            row = segments.order_by("-n").first()
            EquitySegment.objects.filter(pk=row.pk).update(**change)
            verdict = pages_match.agree(
                "leaderboard", pages_sql.rollup_leaderboard(cursor, book.pk, clock), raw
            )
            assert verdict.startswith("DIFFERS: book."), (change, verdict)
            EquitySegment.objects.filter(pk=row.pk).update(fall=row.fall, squares=row.squares)


def test_live_write_moves_the_stamp_and_keeps_the_rollups(bench_book):
    from benchmarks.pages import live_write

    _generated, book, clock = bench_book
    before, stored = book_stamp(book), rollups.stored(book.pk)
    assert live_write(book.pk, clock) > 0
    assert BookState.objects.get(book=book).revision == 1
    assert live_write(book.pk, clock) > 0
    assert BookState.objects.get(book=book).revision == 2
    assert book_stamp(book) != before
    assert rollups.stored(book.pk) == stored


def test_the_harness_tables_judge_floors_and_first_requests():
    from benchmarks.pages import AfterWrite, PageResult, after_write_table, floors_table

    floors = floors_table(
        [
            PageResult("summary", "Summary", json_ms=30.0, sql_ms=60.0, rollup_ms=5.0),
            PageResult("opportunity", "Opportunity", json_ms=12.0, sql_ms=90.0, rollup_ms=6.0),
            PageResult("guards", "Guards", json_ms=90.0, sql_ms=100.0),
            PageResult("fidelity", "Fidelity", json_ms=90.0),
        ]
    ).splitlines()
    rows = {line.split()[0]: line.split() for line in floors[3:]}
    assert rows["summary"][-1] == "FAIL" and "6.00" in rows["summary"]  # 30 / 5 > 3
    assert rows["opportunity"][-1] == "pass" and "0.13" in rows["opportunity"]
    assert rows["guards"][-1] == "pass" and "raw" in rows["guards"]  # 0.90 <= 1.5
    assert rows["fidelity"][-1] == "n/a"

    first = after_write_table(
        [
            AfterWrite("summary", json_ms=120.0, html_ms=310.0, write_ms=20.0),
            AfterWrite("trading", json_ms=80.0, html_ms=150.0, write_ms=20.0),
            AfterWrite("learning", json_ms=80.0, notes=["html answered 500"]),
        ],
        3,
    ).splitlines()
    verdicts = {line.split()[0]: line.split()[-1] for line in first[3:6]}
    assert verdicts == {"summary": "FAIL", "trading": "pass", "learning": "n/a"}
    assert "1 of 3 pages pass" in first


def test_the_harness_table_shows_cold_and_warm_times():
    from benchmarks.pages import PageResult, table

    rows = table(
        [
            PageResult("guards", "Guards", queries=18, json_ms=900.0, sql_ms=600.0, warm_ms=25.0),
            PageResult("health", "Health", queries=20, json_ms=120.0, sql_note="no SQL"),
        ]
    ).splitlines()
    header = rows[0].split()
    assert header[:4] == ["page", "queries", "JSON", "ms"] and "warm" in header
    guards = rows[2].split()
    # ratio from the cold time: 900 / 600
    assert guards[0] == "guards" and "1.50" in guards and "25.0" in guards
    assert "SQL n/a: no SQL" in rows[-1]


def test_rows_are_written_when_a_live_book_would_write_them(bench_book):
    """Wall-clock times follow the candles, the last close written now: the last 24 hours
    hold the signals of about a day of candles (what the health page ranks exactly), not
    the whole book."""
    from datetime import timedelta

    from django.utils import timezone

    from signals.models import SignalTransition

    _generated, book, _clock = bench_book
    signals = Signal.objects.filter(book=book)
    newest = signals.order_by("-created_at").first()
    assert timezone.now() - newest.created_at < timedelta(minutes=5)
    for signal in signals.order_by("?")[:20]:
        assert signal.created_at - signal.candle_time == newest.created_at - newest.candle_time
    recent = signals.filter(created_at__gte=timezone.now() - timedelta(hours=24)).count()
    span = newest.candle_time - signals.order_by("candle_time").first().candle_time
    assert 0 < recent < signals.count() * 2 * timedelta(days=1) / span + 20
    newest_block = GuardDecision.objects.filter(signal__book=book).latest("created_at")
    assert timezone.now() - newest_block.created_at < timedelta(minutes=5)
    assert not SignalTransition.objects.filter(
        signal__book=book, created_at__gt=timezone.now()
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_the_writer_writes_the_book_on_its_beat_until_stopped():
    """The load test's live writer: one ``live_write`` a beat from its own thread (its own
    connection), leaving the cache alone; stopped, it writes no more."""
    import time as clock_time

    from benchmarks.pages import Writer

    generated = generate(signals=SIGNALS, seed=3, book_name="bench writer")
    book = Book.objects.get(pk=generated.book_id)
    writer = Writer(book.pk, book_clock(book), seconds=0.2)
    writer.start()
    deadline = clock_time.monotonic() + 30
    while len(writer.times) < 3 and clock_time.monotonic() < deadline:
        clock_time.sleep(0.05)
    writer.stop()
    assert not writer.is_alive()
    written = len(writer.times)
    assert written >= 3 and all(ms > 0 for ms in writer.times)
    assert BookState.objects.get(book=book).revision == written
    clock_time.sleep(0.5)
    assert BookState.objects.get(book=book).revision == written


def test_the_live_load_table_judges_p95():
    from benchmarks.pages import PageResult, live_load_table

    lines = live_load_table(
        [
            PageResult("summary", "Summary", live_requests=90, live_writes=6, live_p50_ms=120.0,
                       live_p95_ms=280.0),
            PageResult("guards", "Guards", live_requests=40, live_writes=6, live_p50_ms=200.0,
                       live_p95_ms=900.0),
            PageResult("health", "Health", live_requests=50, live_errors=2, live_writes=6,
                       live_p50_ms=100.0, live_p95_ms=150.0),
            PageResult("trading", "Trading"),
        ],
        10,
        5.0,
    ).splitlines()  # fmt: skip
    verdicts = {line.split()[0]: line.split()[-1] for line in lines[3:]}
    assert verdicts == {"summary": "pass", "guards": "FAIL", "health": "FAIL"}
    assert "every 5 s" in lines[0]
