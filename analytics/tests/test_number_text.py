"""How numbers read (README "How numbers read"): every registered page and its JSON twin,
rendered on a replayed book with its ablation legs, write one minus sign (U+2212 in the
HTML, a plain "-" in JSON), money to the cent, rates to one decimal of a percent, and the
same figure the same way on every page that shows it."""

import re
from decimal import Decimal
from html.parser import HTMLParser
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from analytics.numbers import cents, rate
from analytics.pages import all_pages
from analytics.pages.performance import comparison, figures
from markets import admin_format
from signals.models import Book

pytestmark = pytest.mark.django_db

# Figures that are not money and may carry more than two decimals, by their key: prices
# and other per-unit figures (a quantity, a price difference, a guard's threshold), rates
# (a fraction: three places, one decimal of a percent), p and q values (three places).
PER_UNIT = {
    "entry_price",
    "exit_price",
    "stop_loss",
    "take_profit",
    "price",
    "quantity",
    "entry_difference",
    "exit_difference",
    "threshold",
    "value",
    "current_value",
    "recommended_value",
}
RATES = {"win_rate", "approval_rate", "made_money_rate", "share_blocked"}
PROBABILITIES = {"p_value", "q_value"}
# Seconds and other measures that are neither money nor rates: one decimal.
MEASURES = {"p50_seconds", "p95_seconds"}
DECIMAL = re.compile(r"-?\d+\.(\d+)")
# An ASCII hyphen-minus right before a digit, not inside a word, a date (2026-12-07), a
# range or a path.
HYPHEN_NUMBER = re.compile(r"(?<![\w.:/\-\u2013])-\d")
SKIPPED_TAGS = {"script", "style", "code", "pre", "time", "kbd", "samp", "textarea"}


class Text(HTMLParser):
    """The text a reader sees, outside attributes, scripts, code and times."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "col", "source", "wbr", "area"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if not SKIPPED_TAGS.intersection(self.stack):
            self.chunks.append(data)


def visible_text(html: str) -> str:
    parser = Text()
    parser.feed(html)
    return " ".join(parser.chunks)


def hyphen_numbers(text: str) -> list[str]:
    """Each ASCII hyphen-minus before a digit in ``text`` (URLs aside), with its context."""
    found = []
    for word in text.split():
        if "://" in word or word.startswith("/") or word.startswith("?"):
            continue
        if HYPHEN_NUMBER.search(word):
            found.append(word)
    return found


def numbers(data: Any, key: str = "", path: str = "") -> list[tuple[str, str, str]]:
    """Every number of a JSON payload with decimals: (path, its key, its text). A list of
    numbers (a chart's series) is judged by the key that holds the list."""
    if isinstance(data, dict):
        out = []
        for name, value in data.items():
            out += numbers(value, name, f"{path}.{name}")
        return out
    if isinstance(data, list):
        return [item for value in data for item in numbers(value, key, f"{path}[]")]
    if isinstance(data, bool) or data is None:
        return []
    if isinstance(data, float | str) and DECIMAL.fullmatch(str(data)):
        return [(path, key, str(data))]
    return []


def places_allowed(path: str, key: str) -> int | None:
    """How many decimals the figure at ``path`` may carry (``None``: not judged)."""
    parts = path.split(".")
    if key in PER_UNIT or any(part.rstrip("[]") in PER_UNIT for part in parts):
        return None
    if key in RATES:
        return 3
    if key in PROBABILITIES:
        return 3
    if key in MEASURES:
        return 1
    return 2


@pytest.fixture
def pages(trader_client, replayed_book):
    """Every registered page of the replayed book (ablated first, so the guard page's
    path-dependent values are there): {name: (html, json)}."""
    call_command(
        "ablate", "--book", replayed_book.name, "--inline", "--no-progress", stdout=StringIO()
    )
    out = {}
    for page in all_pages():
        params = {"book": replayed_book.pk} if page.needs_book else {}
        html = trader_client.get(reverse(f"analytics:{page.name}"), params)
        twin = trader_client.get(reverse("analytics:api-page", args=[page.name]), params)
        assert html.status_code == 200, page.name
        assert twin.status_code == 200, page.name
        out[page.name] = (html.content.decode(), twin.json())
    return out


def test_every_page_writes_negative_numbers_with_a_real_minus_sign(pages):
    assert len(pages) >= 10
    wrong = {
        name: hyphen_numbers(visible_text(html))
        for name, (html, _) in pages.items()
        if hyphen_numbers(visible_text(html))
    }
    assert wrong == {}
    # The pages do show losses, so the check above saw some.
    assert any(admin_format.MINUS in visible_text(html) for html, _ in pages.values())


def test_every_twin_carries_money_to_the_cent_and_rates_to_one_decimal_of_a_percent(pages):
    wrong = []
    judged = 0
    for name, (_, twin) in pages.items():
        for path, key, text in numbers(twin["data"]):
            allowed = places_allowed(path, key)
            if allowed is None:
                continue
            judged += 1
            decimals = len(DECIMAL.fullmatch(text).group(1))  # type: ignore[union-attr]
            if decimals > allowed:
                wrong.append(f"{name}{path} = {text} (at most {allowed} decimals)")
    assert wrong == []
    assert judged > 100


def figure_on_every_page(pages, read):
    """{page: the figure} for the pages where ``read(data)`` finds it."""
    found = {}
    for name, (_, twin) in pages.items():
        value = read(twin["data"])
        if value is not None:
            found[name] = value
    return found


def test_the_win_rate_reads_the_same_on_every_page(pages):
    win_rates = figure_on_every_page(
        pages,
        lambda data: (
            data.get("figures", {}).get("win_rate")
            or data.get("totals", {}).get("win_rate")
            or (data.get("book") or {}).get("guarded", {}).get("win_rate")
            or next((p["win_rate"] for p in data.get("periods", []) if p["period"] == "30d"), None)
        ),
    )
    assert set(win_rates) == {"performance", "trading", "leaderboard", "summary"}
    assert len(set(win_rates.values())) == 1, win_rates
    text = admin_format.percent(next(iter(win_rates.values())))
    assert re.fullmatch(r"\d+\.\d %", text)
    for name in win_rates:
        assert text in visible_text(pages[name][0]), name


def test_the_expectancy_reads_the_same_on_every_page(pages):
    expectancy = figure_on_every_page(
        pages,
        lambda data: (
            data.get("figures", {}).get("expectancy")
            or data.get("totals", {}).get("average_pnl")
            or (data.get("book") or {}).get("guarded", {}).get("expectancy")
        ),
    )
    assert set(expectancy) == {"performance", "trading", "leaderboard"}
    assert len(set(expectancy.values())) == 1, expectancy
    text = admin_format.money(Decimal(next(iter(expectancy.values()))))
    assert text.startswith(admin_format.MINUS)
    for name in expectancy:
        assert text in visible_text(pages[name][0]), name


def test_the_path_dependent_value_reads_the_same_on_the_guard_and_performance_pages(
    trader_client, pages, replayed_book
):
    rows = pages["guards"][1]["data"]["ablation"]["rows"]
    assert rows and all(row["path_dependent"] is not None for row in rows)
    for row in rows:
        leg = Book.objects.get(pk=row["leg"]["id"])
        twin = trader_client.get(
            reverse("analytics:api-page", args=["performance"]),
            {"book": replayed_book.pk, "compare": leg.pk},
        ).json()["data"]
        total = next(r for r in twin["compare"]["rows"] if r["key"] == "total_pnl")
        assert total["difference"] == row["path_dependent"], row["guard"]
        html = trader_client.get(
            reverse("analytics:performance"), {"book": replayed_book.pk, "compare": leg.pk}
        ).content.decode()
        shown = admin_format.money(Decimal(row["path_dependent"])).lstrip(admin_format.MINUS)
        assert shown in visible_text(html)
        assert hyphen_numbers(visible_text(html)) == []
        assert shown in visible_text(pages["guards"][0])


def test_a_difference_is_rounded_once_from_the_exact_figures():
    """A.total 1.005 and B.total 0.004 read 1.01 and 0.00, but A minus B is 1.001: 1.00,
    as the guard page rounds the same exact difference (the +1,813.52 of one page and
    +1,813.53 of another came from rounding twice)."""

    def exact(total: str, wins: int) -> dict[str, Any]:
        return {
            "total_pnl": Decimal(total),
            "trades": 3,
            "wins": wins,
            "losses": 3 - wins,
            "win_rate": wins / 3,
            "gross_profit": Decimal(total),
            "gross_loss": Decimal(0),
            "profit_factor": None,
            "expectancy": Decimal(total) / 3,
            "max_drawdown": 0.0,
            "sharpe": None,
        }

    a, b = exact("1.005", 2), exact("0.004", 1)
    rows = {
        row["key"]: row
        for row in comparison({"figures": figures(a)}, {"figures": figures(b)}, a, b)
    }
    assert (figures(a)["total_pnl"], figures(b)["total_pnl"]) == (Decimal("1.01"), Decimal("0.00"))
    assert rows["total_pnl"]["difference"] == cents(Decimal("1.001")) == Decimal("1.00")
    assert rows["win_rate"]["difference"] == rate(1 / 3) == 0.333


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.315, "31.5 %"), (0.3145, "31.5 %"), (0.2353, "23.5 %"), (-0.065, "\N{MINUS SIGN}6.5 %")],
)
def test_a_rate_reads_as_a_percentage_to_one_decimal_rounded_half_up(value, text):
    assert admin_format.percent(rate(value)) == text


def test_the_signal_pages_write_losses_with_a_real_minus_sign(trader_client, replayed_book):
    from shadow.models import ShadowTrade
    from signals.models import PaperTrade

    losing = list(
        PaperTrade.objects.filter(book=replayed_book, pnl__lt=0).values_list(
            "signal_id", flat=True
        )[:5]
    ) + list(
        ShadowTrade.objects.filter(signal__book=replayed_book, pnl__lt=0).values_list(
            "signal_id", flat=True
        )[:5]
    )
    assert len(losing) == 10
    for signal_id in losing:
        response = trader_client.get(reverse("analytics:signal", args=[signal_id]))
        assert response.status_code == 200
        text = visible_text(response.content.decode())
        assert hyphen_numbers(text) == [], signal_id
        assert admin_format.MINUS in text, signal_id


def _period(data, key):
    # The replay's 600 hours fit in 30 days: the summary's 30-day window is the whole book.
    return next((p[key] for p in data.get("periods", []) if p["period"] == "30d"), None)


SAME_FIGURES = {
    "total P&L": (
        lambda d: (
            d.get("figures", {}).get("total_pnl")
            or d.get("totals", {}).get("total_pnl")
            or (d.get("book") or {}).get("guarded", {}).get("total_pnl")
            or _period(d, "pnl")
        ),
        {"performance", "trading", "leaderboard", "summary"},
    ),
    "profit factor": (
        lambda d: (
            d.get("figures", {}).get("profit_factor")
            or (d.get("book") or {}).get("guarded", {}).get("profit_factor")
        ),
        {"performance", "leaderboard"},
    ),
    "Sharpe": (
        lambda d: (
            d.get("figures", {}).get("sharpe")
            or (d.get("book") or {}).get("guarded", {}).get("sharpe")
        ),
        {"performance", "leaderboard"},
    ),
    "max drawdown": (
        lambda d: (
            d.get("figures", {}).get("max_drawdown")
            or (d.get("book") or {}).get("guarded", {}).get("max_drawdown")
        ),
        {"performance", "leaderboard"},
    ),
    "guards' net impact": (
        lambda d: (
            d.get("totals", {}).get("net_impact")
            or (d.get("book") or {}).get("guards_effect")
            or _period(d, "net_impact")
        ),
        {"opportunity", "leaderboard", "summary"},
    ),
}


@pytest.mark.parametrize("figure", sorted(SAME_FIGURES))
def test_a_figure_reads_the_same_on_every_page_that_shows_it(pages, figure):
    read, expected_pages = SAME_FIGURES[figure]
    found = figure_on_every_page(pages, read)
    found = {name: value for name, value in found.items() if name in expected_pages}
    assert set(found) == expected_pages, figure
    assert len(set(map(str, found.values()))) == 1, found


def test_each_guards_net_impact_reads_the_same_on_the_guard_and_opportunity_pages(pages):
    on_guards = {
        guard["name"]: (guard["any"]["net_impact"], guard["sole"]["net_impact"])
        for guard in pages["guards"][1]["data"]["guards"]
    }
    on_opportunity = {
        row["guard"]: (row["any"]["net_impact"], row["sole"]["net_impact"])
        for row in pages["opportunity"][1]["data"]["guards"]
    }
    assert on_guards and on_guards == on_opportunity
    for any_impact, _ in on_guards.values():
        text = admin_format.signed_money(Decimal(any_impact))
        assert text in visible_text(pages["guards"][0])
        assert text in visible_text(pages["opportunity"][0])
