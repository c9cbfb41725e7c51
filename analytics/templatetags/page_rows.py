"""The long tables' rows, written in Python: the same text the template loops they
replace gave, character for character, at a fraction of their cost.

A template loop of a few hundred rows of ten cells took most of its page's HTML time
on the 1,000,000-signal book (the opportunity page's three breakdowns, the learning
page's threshold tables: docs/performance.md), mostly in localising each number
(``number_format`` reads three formats, through the active language, for every one).
Each tag below writes one loop's rows as that loop did: every value through ``_Shown``
(what ``{{ value }}`` does: local time, localisation, escaping; the formats read once per
table), every number through the same ``trader`` filters, every comparison as
``{% if a > b %}`` makes it (false when the two do not compare).
``analytics/tests/test_page_rows.py`` renders the old loops beside them."""

import html
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django import template
from django.conf import settings
from django.template.defaultfilters import date as date_filter
from django.utils import numberformat
from django.utils.formats import get_format, localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, SafeString, mark_safe
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]  # not in the stubs
from django.utils.translation import get_language

from analytics.templatetags.trader import percent, signed_money

register = template.Library()


class _Shown:
    """``{{ item }}`` with autoescaping on (``django.template.base.render_value_in_context``:
    local time, ``localize``, escaping) for one table: the number formats read once, not
    three times per number through the active language (most of a number's cost), a
    whole number written as ``number_format`` writes it without grouping, and the text
    escaped as ``conditional_escape`` does."""

    def __init__(self) -> None:
        language = get_language()
        self.separator = get_format("DECIMAL_SEPARATOR", language, use_l10n=True)
        self.grouping = get_format("NUMBER_GROUPING", language, use_l10n=True)
        self.thousands = get_format("THOUSAND_SEPARATOR", language, use_l10n=True)
        # ``numberformat.format``'s own fast case: an int is its digits when not grouped.
        self.plain_ints = not (settings.USE_THOUSAND_SEPARATOR and self.grouping != 0)

    def __call__(self, item: Any) -> str:
        if isinstance(item, SafeData):
            return str(item)
        if isinstance(item, str):
            return html.escape(item)
        if isinstance(item, int) and not isinstance(item, bool) and self.plain_ints:
            return str(item)
        if isinstance(item, Decimal | float | int) and not isinstance(item, bool):
            # What ``localize`` -> ``number_format`` does with these formats.
            shown: Any = numberformat.format(
                item, self.separator, None, self.grouping, self.thousands, use_l10n=True
            )
        else:
            shown = localize(template_localtime(item))
        return str(conditional_escape(shown if isinstance(shown, str) else str(shown)))


def _day(day: Any, form: str) -> str:
    """``day|date:form`` for ``form`` "Ymd" or "Y-m-d" (a ``date`` written directly)."""
    if type(day) is date:
        return f"{day.year:04d}{day.month:02d}{day.day:02d}" if form == "Ymd" else day.isoformat()
    return str(date_filter(template_localtime(day), form))


def _above(left: Any, right: Any) -> bool:
    try:
        return bool(left > right)
    except Exception:
        return False


def _below(left: Any, right: Any) -> bool:
    try:
        return bool(left < right)
    except Exception:
        return False


def _tone(amount: Any, *, gain_above_zero: bool) -> str:
    """``pos``/``neg``/nothing, as ``{% if a > 0 %}pos{% elif a < 0 %}neg{% endif %}``
    (``gain_above_zero``) or with the two the other way round."""
    if gain_above_zero:
        return "pos" if _above(amount, 0) else "neg" if _below(amount, 0) else ""
    return "pos" if _below(amount, 0) else "neg" if _above(amount, 0) else ""


@register.simple_tag
def learning_point_rows(points: Sequence[dict[str, Any]], currency: str) -> SafeString:
    """The rows of the learning page's "every threshold tried" table (one per point)."""
    value = _Shown()
    out = []
    for point in points:
        classes = (
            ("current" if point["current"] else "")
            + (" best" if point["best"] else "")
            + ("" if point["enough"] else " thin")
        )
        tags = (' <span class="tag">current</span>' if point["current"] else "") + (
            ' <span class="tag">best</span>' if point["best"] else ""
        )
        over = " over-share" if point["over_share"] else ""
        blocked, samples = value(point["blocked"]), value(point["samples"])
        cells = [
            f'<th scope="row" class="num" data-sort="{value(point["threshold"])}">'
            f"{value(point['label'])}{tags}</th>",
            f'<td class="num{over}" data-sort="{blocked}">{blocked} <span class="muted small">'
            f"({value(percent(point['share_blocked']))})</span></td>",
            f'<td class="num" data-sort="{samples}">{samples}</td>',
        ]
        for key, extra in (
            ("net_impact", ""),
            ("later_net_impact", ""),
            ("alone_net_impact", "secondary "),
        ):
            amount = point[key]
            cells.append(
                f'<td class="num {extra}{_tone(amount, gain_above_zero=True)}" '
                f'data-sort="{value(amount)}">{value(signed_money(amount, currency))}</td>'
            )
        inner = "".join(f"\n          {cell}" for cell in cells)
        out.append(f'\n        <tr class="{classes}">{inner}\n        </tr>\n        ')
    return mark_safe("".join(out))  # every value escaped by _Shown


@register.simple_tag
def opportunity_rows(rows: Sequence[dict[str, Any]], key: str, currency: str) -> SafeString:
    """The rows of one of the opportunity page's breakdowns (``key``: "strategy",
    "symbol" or "day"), or its empty line."""
    if not rows:
        return mark_safe(
            '\n    <tr><td colspan="6" class="muted">Nothing in this period.</td></tr>\n    '
        )
    value = _Shown()
    out = []
    for row in rows:
        if key == "strategy":
            name = value(row["name"])
            version = (
                f' <span class="muted small">v{value(row["version"])}</span>'
                if row["version"]
                else ""
            )
            kind = f"{value(row['kind'])} · " if row["kind"] != row["name"] else ""
            first = (
                f'<td class="wrap-name" data-sort="{name}">{name}{version}'
                f'<span class="sub muted small">{kind}{value(row["market"])}</span></td>\n      '
            )
        elif key == "symbol":
            first = f"<td>{value(row['symbol'])}</td>\n      "
        else:
            # (The template's first two branches end on their line's indentation.)
            day = row["day"]
            first = (
                f'<td class="day" data-sort="{value(_day(day, "Ymd"))}">'
                f"{value(_day(day, 'Y-m-d'))}</td>"
            )
        blocked = f'<td class="num">{value(row["blocked"])}</td>' if key != "day" else ""
        cost, impact = row["opportunity_cost"], row["net_impact"]
        out.append(
            f"\n    <tr>\n      {first}\n      {blocked}\n"
            f'      <td class="num">{value(row["closed"])}</td>\n'
            f'      <td class="num opt">{value(row["made_money"])}</td>\n'
            f'      <td class="num {_tone(cost, gain_above_zero=False)}" '
            f'data-sort="{value(cost)}">{value(signed_money(cost, currency))}</td>\n'
            f'      <td class="num opt {_tone(impact, gain_above_zero=True)}" '
            f'data-sort="{value(impact)}">{value(signed_money(impact, currency))}</td>\n'
            "    </tr>\n    "
        )
    return mark_safe("".join(out))  # every value escaped by _Shown
