"""The long tables' rows written in Python (``analytics.templatetags.page_rows``) give
the very text of the template loops they replaced, kept here as they were, for rows that
take every branch: numbers of each kind (whole, exact decimals, floats small enough for
an exponent, nothing), gains, losses and zero, names to escape, every flag."""

from datetime import date, datetime
from decimal import Decimal
from itertools import product
from typing import Any

import pytest
from django.template import engines

# The loops as learning.html and _opportunity_table.html had them.
OLD_POINTS = """{% load trader %}
        {% for point in guard.points %}
        <tr class="{% if point.current %}current{% endif %}{% if point.best %} best{% endif %}{% if not point.enough %} thin{% endif %}">
          <th scope="row" class="num" data-sort="{{ point.threshold }}">{{ point.label }}{% if point.current %} <span class="tag">current</span>{% endif %}{% if point.best %} <span class="tag">best</span>{% endif %}</th>
          <td class="num{% if point.over_share %} over-share{% endif %}" data-sort="{{ point.blocked }}">{{ point.blocked }} <span class="muted small">({{ point.share_blocked|percent }})</span></td>
          <td class="num" data-sort="{{ point.samples }}">{{ point.samples }}</td>
          <td class="num {% if point.net_impact > 0 %}pos{% elif point.net_impact < 0 %}neg{% endif %}" data-sort="{{ point.net_impact }}">{{ point.net_impact|signed_money:currency }}</td>
          <td class="num {% if point.later_net_impact > 0 %}pos{% elif point.later_net_impact < 0 %}neg{% endif %}" data-sort="{{ point.later_net_impact }}">{{ point.later_net_impact|signed_money:currency }}</td>
          <td class="num secondary {% if point.alone_net_impact > 0 %}pos{% elif point.alone_net_impact < 0 %}neg{% endif %}" data-sort="{{ point.alone_net_impact }}">{{ point.alone_net_impact|signed_money:currency }}</td>
        </tr>
        {% endfor %}"""
OLD_OPPORTUNITY = """{% load trader %}
    {% for row in rows %}
    <tr>
      {% if key == "strategy" %}<td class="wrap-name" data-sort="{{ row.name }}">{{ row.name }}{% if row.version %} <span class="muted small">v{{ row.version }}</span>{% endif %}<span class="sub muted small">{% if row.kind != row.name %}{{ row.kind }} · {% endif %}{{ row.market }}</span></td>
      {% elif key == "symbol" %}<td>{{ row.symbol }}</td>
      {% else %}<td class="day" data-sort="{{ row.day|date:'Ymd' }}">{{ row.day|date:"Y-m-d" }}</td>{% endif %}
      {% if key != "day" %}<td class="num">{{ row.blocked }}</td>{% endif %}
      <td class="num">{{ row.closed }}</td>
      <td class="num opt">{{ row.made_money }}</td>
      <td class="num {% if row.opportunity_cost < 0 %}pos{% elif row.opportunity_cost > 0 %}neg{% endif %}" data-sort="{{ row.opportunity_cost }}">{{ row.opportunity_cost|signed_money:currency }}</td>
      <td class="num opt {% if row.net_impact > 0 %}pos{% elif row.net_impact < 0 %}neg{% endif %}" data-sort="{{ row.net_impact }}">{{ row.net_impact|signed_money:currency }}</td>
    </tr>
    {% empty %}
    <tr><td colspan="6" class="muted">Nothing in this period.</td></tr>
    {% endfor %}"""
NEW_POINTS = """{% load page_rows %}
        {% learning_point_rows guard.points currency %}"""
NEW_OPPORTUNITY = """{% load page_rows %}
    {% opportunity_rows rows key currency %}"""

AMOUNTS: list[Any] = [
    Decimal("1234567.89"),
    Decimal("-0.01"),
    Decimal("0.00"),
    Decimal("-98765.4321"),
    None,
    0,
    2.5,
]
THRESHOLDS: list[Any] = [240, 0, -15, 1.5, 0.000001, 1e21, -2.25, 3.0]


def render(source: str, context: dict[str, Any]) -> str:
    return engines["django"].from_string(source).render(context)


def points() -> list[dict[str, Any]]:
    flags = list(product([True, False], repeat=4))
    return [
        {
            "threshold": threshold,
            "label": f'{threshold} <min> & "more"',
            "blocked": 1234567 * i,
            "share_blocked": [0.315, None, 0.0, 1.0][i % 4],
            "samples": i,
            "net_impact": AMOUNTS[i % len(AMOUNTS)],
            "later_net_impact": AMOUNTS[(i + 2) % len(AMOUNTS)],
            "alone_net_impact": AMOUNTS[(i + 4) % len(AMOUNTS)],
            "current": flags[i % len(flags)][0],
            "best": flags[i % len(flags)][1],
            "enough": flags[i % len(flags)][2],
            "over_share": flags[i % len(flags)][3],
        }
        for i, threshold in enumerate(THRESHOLDS * 3)
    ]


def breakdown(key: str) -> list[dict[str, Any]]:
    rows = []
    for i, amount in enumerate(AMOUNTS * 2):
        row: dict[str, Any] = {
            "closed": 1000 * i,
            "made_money": i,
            "opportunity_cost": amount,
            "net_impact": -amount if isinstance(amount, Decimal) else amount,
        }
        if key == "strategy":
            name = ["ema <cross>", "rsi & co", '"quoted"', "(no configuration)"][i % 4]
            row |= {
                "name": name,
                "kind": name if i % 3 == 0 else "ema_cross",
                "version": [None, 0, 3, 12][i % 4],
                "market": "BTC/USD 5m" if i % 4 != 3 else "",
                "blocked": 54321 * i,
            }
        elif key == "symbol":
            row |= {"symbol": ["BTC/USD", "<b>", "ETH&USD"][i % 3], "blocked": 7 * i}
        else:
            row["day"] = [date(2024, 2, 29), date(999, 1, 5), datetime(2024, 3, 1, 23, 59)][i % 3]
        rows.append(row)
    return rows


@pytest.mark.parametrize("grouped", [False, True])
def test_the_threshold_rows_are_the_old_loops_text(settings, grouped):
    settings.USE_THOUSAND_SEPARATOR = grouped
    for currency in ("USD", "", "<x>"):
        context = {"guard": {"points": points()}, "currency": currency}
        old = render(OLD_POINTS, context)
        assert render(NEW_POINTS, context) == old
        assert old.count("<tr ") == len(points())
    empty = {"guard": {"points": []}, "currency": "USD"}
    assert render(NEW_POINTS, empty) == render(OLD_POINTS, empty)


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("key", ["strategy", "symbol", "day"])
def test_the_opportunity_rows_are_the_old_loops_text(settings, grouped, key):
    settings.USE_THOUSAND_SEPARATOR = grouped
    for rows in (breakdown(key), []):
        context = {"rows": rows, "key": key, "currency": "USD"}
        old = render(OLD_OPPORTUNITY, context)
        assert render(NEW_OPPORTUNITY, context) == old
        assert old.count("<tr>") == len(rows) or (not rows and "Nothing in this period" in old)
