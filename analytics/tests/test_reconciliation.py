"""The quality bar of the opportunity-cost page and the leaderboard: their figures
reconcile, to the cent, with a plain reference computed here from the ORM rows.

Run on a replay of real daily candles (Bitstamp BTC/USD, ETH/USD and LTC/USD from
../shared, two strategies per market and four guards, so some signals are blocked by
several guards), and on ``replayed_book`` so it also runs without ../shared.
"""

from collections import defaultdict
from decimal import Decimal
from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from analytics.breakdowns import opportunity
from analytics.filters import parse_filters
from analytics.numbers import cents, rate
from analytics.templatetags.trader import money, signed_money
from shadow.models import ShadowTrade
from signals.models import Book, GuardConfig, GuardDecision, PaperTrade, Signal, StrategyConfig

pytestmark = pytest.mark.django_db

SYMBOLS = {"BTC/USD": "BTCUSD", "ETH/USD": "ETHUSD", "LTC/USD": "LTCUSD"}
GUARDS = {
    "max_open_positions": {"max_open": 2},
    "max_open_per_symbol": {"max_open": 1},
    "duplicate_position": {},
    "cooldown_after_stop": {"minutes": 3 * 24 * 60},
}


@pytest.fixture
def bitstamp_book(shared_dir):
    """The real replay: daily Bitstamp candles of three markets, 2018-01-01 to the end."""
    for symbol, stem in SYMBOLS.items():
        path = shared_dir / f"data/candles/bitstamp/bitstamp_{stem}_d.normalized.csv"
        market = {"exchange": "bitstamp", "symbol": symbol, "timeframe": "1d"}
        call_command(
            "load_candles",
            str(path),
            "--exchange",
            "bitstamp",
            "--symbol",
            symbol,
            "--timeframe",
            "1d",
            stdout=StringIO(),
        )
        for kind in ("ema_crossover", "macd_crossover"):
            StrategyConfig.objects.create(name=f"{kind} {symbol}", kind=kind, params={}, **market)
    for kind, params in GUARDS.items():
        GuardConfig.objects.create(name=kind, kind=kind, params=params)
    call_command(
        "replay",
        "--exchange",
        "bitstamp",
        *[arg for symbol in SYMBOLS for arg in ("--symbol", symbol)],
        "--timeframe",
        "1d",
        "--since",
        "2018-01-01",
        "--no-progress",
        stdout=StringIO(),
    )
    return Book.objects.get(kind=Book.Kind.REPLAY)


class Tables(HTMLParser):
    """The text of every cell of every table with an id, row by row (thead, tbody, tfoot)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[list[str]]]] = {}
        self.table: str | None = None
        self.part = ""
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "table" and attributes.get("id"):
            self.table = attributes["id"]
            self.tables[self.table] = defaultdict(list)
        elif self.table and tag in ("thead", "tbody", "tfoot"):
            self.part = tag
        elif self.table and tag == "tr":
            self.row = []
        elif self.row is not None and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None
        elif tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None and self.table:
            self.tables[self.table][self.part].append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables(html: str) -> dict[str, dict[str, list[list[str]]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def get_both(client, name, book):
    html = client.get(reverse(f"analytics:{name}"), {"book": book.pk})
    assert html.status_code == 200
    twin = client.get(reverse("analytics:api-page", args=[name]), {"book": book.pk})
    assert twin.status_code == 200
    return html.content.decode(), twin.json()["data"]


def reconcile_opportunity(client, book) -> dict[str, int]:
    html, data = get_both(client, "opportunity", book)
    filters = parse_filters({"book": str(book.pk)})

    # The plain reference: every blocked signal's shadow trade, iterated here.
    signals = list(
        Signal.objects.filter(book=book, state="blocked").select_related(
            "shadow_trade", "book_strategy"
        )
    )
    blockers: dict[int, set[str]] = defaultdict(set)
    for signal_id, guard in GuardDecision.objects.filter(
        signal__book=book, verdict="block"
    ).values_list("signal_id", "guard"):
        blockers[signal_id].add(guard)
    counted = []
    for signal in signals:
        trade = getattr(signal, "shadow_trade", None)
        if (
            trade
            and trade.group == "blocked"
            and trade.status == "closed"
            and trade.pnl is not None
        ):
            counted.append((signal, trade))
    total = sum((trade.pnl for _, trade in counted), Decimal(0))
    assert counted, "closed shadow trades of blocked signals to reconcile"

    # The total equals the plain sum, on the page, in the twin and in the query.
    found = opportunity(filters)
    raw = found["totals"]
    assert raw["opportunity_cost"] == total
    assert Decimal(data["totals"]["opportunity_cost"]) == cents(total)
    assert Decimal(data["totals"]["net_impact"]) == -cents(total)
    assert data["totals"]["closed"] == len(counted)
    assert data["totals"]["blocked"] == len(signals)

    # Sole attribution: summed over guards, the impact of the signals one guard blocked.
    single = sum((t.pnl for s, t in counted if len(blockers[s.pk]) == 1), Decimal(0))
    several = sum((t.pnl for s, t in counted if len(blockers[s.pk]) >= 2), Decimal(0))
    sole = {row["guard"]: row["sole"] for row in found["guards"]}
    assert sorted(sole) == sorted({g for found in blockers.values() for g in found})
    assert sum((row["net_impact"] for row in sole.values()), Decimal(0)) == -single
    assert raw["single_guard"]["net_impact"] == -single
    assert raw["several_guards"]["opportunity_cost"] == several
    assert single + several == total
    for row in data["guards"]:
        guard = row["guard"]
        any_pnl = sum((t.pnl for s, t in counted if guard in blockers[s.pk]), Decimal(0))
        sole_pnl = sum((t.pnl for s, t in counted if blockers[s.pk] == {guard}), Decimal(0))
        assert Decimal(row["any"]["opportunity_cost"]) == cents(any_pnl), guard
        assert Decimal(row["sole"]["net_impact"]) == -cents(sole_pnl), guard

    # Each breakdown sums exactly to the total (in the database's decimals), and each
    # row on the page is its exact value to the cent.
    for rows, shown, key in (
        (found["strategies"], data["strategies"], "name"),
        (found["symbols"], data["symbols"], "symbol"),
        (found["days"], data["days"], "day"),
    ):
        assert sum((row["opportunity_cost"] for row in rows), Decimal(0)) == total, key
        assert sum(row["closed"] for row in rows) == len(counted), key
        assert [Decimal(row["opportunity_cost"]) for row in shown] == [
            cents(row["opportunity_cost"]) for row in rows
        ], key
    per_symbol: dict[str, Decimal] = defaultdict(Decimal)
    per_day: dict[str, Decimal] = defaultdict(Decimal)
    for signal, trade in counted:
        per_symbol[signal.symbol] += trade.pnl
        per_day[trade.exit_time.date().isoformat()] += trade.pnl
    assert {row["symbol"]: Decimal(row["opportunity_cost"]) for row in data["symbols"]} == {
        symbol: cents(value) for symbol, value in per_symbol.items()
    }
    assert {row["day"]: Decimal(row["opportunity_cost"]) for row in data["days"]} == {
        day: cents(value) for day, value in per_day.items()
    }

    # The page shows what the twin says.
    page = tables(html)
    assert money(Decimal(data["totals"]["opportunity_cost"]), "USD") in html
    guard_rows = page["opp-guards"]["tbody"]
    assert [r[0] for r in guard_rows] == [row["guard"] for row in data["guards"]]
    for cells, row in zip(guard_rows, data["guards"], strict=True):
        assert cells[3] == signed_money(Decimal(row["any"]["opportunity_cost"]), "USD")
        assert cells[7] == signed_money(Decimal(row["sole"]["opportunity_cost"]), "USD")
    for table, rows in (
        ("opp-strategies", data["strategies"]),
        ("opp-symbols", data["symbols"]),
        ("opp-days", data["days"]),
    ):
        shown = [cells[-2] for cells in page[table]["tbody"]]
        assert shown == [signed_money(Decimal(r["opportunity_cost"]), "USD") for r in rows]
        assert page[table]["tfoot"][0][-2] == signed_money(
            Decimal(data["totals"]["opportunity_cost"]), "USD"
        )
    return {"several": data["totals"]["several_guards"]["blocked"], "closed": len(counted)}


def plain_stats(trades):
    """Count, wins, total and max drawdown of (pnl, exit_time) rows, the simple way."""
    trades = sorted(trades, key=lambda row: row[1])
    equity = peak = worst = Decimal(0)
    for pnl, _ in trades:
        equity += pnl
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
    return {
        "trades": len(trades),
        "wins": sum(1 for pnl, _ in trades if pnl > 0),
        "total": sum((pnl for pnl, _ in trades), Decimal(0)),
        "max_drawdown": worst,
    }


def reconcile_leaderboard(client, book) -> int:
    html, data = get_both(client, "leaderboard", book)
    paper: dict[int, list] = defaultdict(list)
    for trade in PaperTrade.objects.filter(book=book, status="closed").select_related("signal"):
        paper[trade.signal.book_strategy_id].append((trade.pnl, trade.exit_time))
    shadow: dict[int, list] = defaultdict(list)
    for trade in ShadowTrade.objects.filter(
        book=book, group="blocked", status="closed", signal__state="blocked"
    ).select_related("signal"):
        shadow[trade.signal.book_strategy_id].append((trade.pnl, trade.exit_time))
    signals: dict[int, list[str]] = defaultdict(list)
    for strategy_id, state in Signal.objects.filter(book=book).values_list(
        "book_strategy_id", "state"
    ):
        signals[strategy_id].append(state)

    assert len(data["strategies"]) == book.strategies.count()
    for row in data["strategies"]:
        guarded, unguarded = (
            plain_stats(paper[row["id"]]),
            plain_stats(paper[row["id"]] + shadow[row["id"]]),
        )
        for shown, plain in ((row["guarded"], guarded), (row["unguarded"], unguarded)):
            assert Decimal(shown["total_pnl"]) == cents(plain["total"]), row["name"]
            assert shown["trades"] == plain["trades"]
            assert shown["wins"] == plain["wins"]
            assert Decimal(shown["max_drawdown"]) == cents(plain["max_drawdown"]), row["name"]
            if plain["trades"]:
                # Per-trade money reads to the cent like all money (README, "How numbers read").
                assert Decimal(shown["average_pnl"]) == cents(plain["total"] / plain["trades"])
        assert Decimal(row["guards_effect"]) == -cents(
            sum((pnl for pnl, _ in shadow[row["id"]]), Decimal(0))
        )
        states = signals[row["id"]]
        passed = sum(
            1 for s in states if s in ("approved", "executed", "failed", "expired", "closed")
        )
        decided = passed + states.count("blocked")
        assert row["signals"] == len(states)
        # Rates read as a fraction to three places, half up (README, "How numbers read").
        assert row["approval_rate"] == (rate(passed / decided) if decided else None)
    everything = [t for trades in paper.values() for t in trades]
    assert Decimal(data["book"]["guarded"]["total_pnl"]) == cents(plain_stats(everything)["total"])
    ranks = [Decimal(row["guarded"]["total_pnl"]) for row in data["strategies"]]
    assert ranks == sorted(ranks, reverse=True), "best P&L first"

    # The page shows what the twin says: P&L guarded (column 6) and unguarded (13).
    body = tables(html)["lb-table"]["tbody"]
    assert len(body) == len(data["strategies"])
    for cells, row in zip(body, data["strategies"], strict=True):
        assert cells[1].startswith(row["name"])
        assert cells[4] == str(row["guarded"]["trades"])
        assert cells[6] == signed_money(Decimal(row["guarded"]["total_pnl"]), "USD")
        assert cells[13] == signed_money(Decimal(row["unguarded"]["total_pnl"]), "USD")
        assert cells[-1] == signed_money(Decimal(row["guards_effect"]), "USD")
    return len(data["strategies"])


@pytest.mark.shared_data
def test_figures_reconcile_on_a_replay_of_real_candles(trader_client, bitstamp_book):
    found = reconcile_opportunity(trader_client, bitstamp_book)
    assert found["several"] > 0, "some signals were blocked by two guards at once"
    assert reconcile_leaderboard(trader_client, bitstamp_book) == 6
    assert len(set(Signal.objects.values_list("symbol", flat=True))) == 3


def test_figures_reconcile_on_the_replayed_book(trader_client, replayed_book):
    reconcile_opportunity(trader_client, replayed_book)
    assert reconcile_leaderboard(trader_client, replayed_book) == 1
