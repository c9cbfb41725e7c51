"""Whether a page's JSON shows the figures the hand-written SQL gives, to the cent.

Each page names its figures its own way, so each page has an extractor here that reads
the SQL's figures out of the page's ``data`` (``None`` when the page does not show
them, e.g. while it is a placeholder). ``compare`` says "same", "DIFFERS: ..." or why
nothing was compared.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

Extractor = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]


def _number(value: Any) -> Any:
    if isinstance(value, float | str) and not isinstance(value, bool):
        try:
            return Decimal(str(value)).quantize(Decimal("0.01"))
        except ArithmeticError:
            return value
    if isinstance(value, Decimal):
        return value.quantize(Decimal("0.01"))
    return value


def _normalise(figures: Any) -> Any:
    if isinstance(figures, dict):
        return {str(key): _normalise(value) for key, value in figures.items()}
    if isinstance(figures, list):
        return [_normalise(value) for value in figures]
    return _number(figures)


def _differences(expected: Any, found: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(found, dict):
        out = []
        # Keys the page does not show are not compared; rows it shows the SQL lacks are.
        for key in expected.keys() | found.keys():
            if key not in expected:
                out.append(f"{path}{key} not in SQL")
            elif key in found:
                out += _differences(expected[key], found[key], f"{path}{key}.")
        return out
    if isinstance(expected, list) and isinstance(found, list):
        if len(expected) != len(found):
            return [f"{path} {len(found)} rows, SQL {len(expected)}"]
        return [d for i, (e, f) in enumerate(zip(expected, found, strict=True))
                for d in _differences(e, f, f"{path}{i}.")]  # fmt: skip
    return [] if expected == found else [f"{path.rstrip('.')} {found} != SQL {expected}"]


def _guards(data: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    return {
        "guards": {
            row["name"]: {
                "blocked": row["blocked"],
                "sole_blocked": row["sole_blocked"],
                "evaluated": row["any"]["evaluated"],
                "shadow_pnl": row["any"]["shadow_pnl"],
                "net_impact": row["any"]["net_impact"],
                "sole_shadow_pnl": row["sole"]["shadow_pnl"],
            }
            for row in data["guards"]
        }
    }


def _opportunity(data: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    totals = data["totals"]
    found: dict[str, Any] = {
        "total": totals["opportunity_cost"],
        "closed": totals["closed"],
        "open": totals["still_open"],
        "by_guard": {row["guard"]: row["any"]["opportunity_cost"] for row in data["guards"]},
        "by_strategy": {
            row["name"]: row["opportunity_cost"] for row in data["strategies"] if row["closed"]
        },
    }
    days = data.get("days") or data.get("by_day")
    if isinstance(days, list):
        found["by_day"] = {
            str(row.get("day") or row.get("date"))[:10]: row["opportunity_cost"]
            for row in days
            if row.get("closed", 1)
        }
    return found


def _leaderboard(data: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    def stats(row: dict[str, Any]) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for set_ in ("guarded", "unguarded"):
            for figure in ("max_drawdown", "sharpe", "profit_factor", "win_rate"):
                figures[f"{set_}_{figure}"] = row[set_][figure]
        return figures

    return {
        "strategies": {
            row["name"]: {
                "signals": row["signals"],
                "trades": row["guarded"]["trades"],
                "wins": row["guarded"]["wins"],
                "pnl": row["guarded"]["total_pnl"],
                **stats(row),
            }
            for row in data["strategies"]
        },
        "book": stats(data["book"]),
    }


def _summary(data: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    wanted = reference["periods"]
    picks = [f"{end}_{kind}" for end in ("best", "worst") for kind in ("strategy", "guard")]
    found: dict[str, Any] = {
        "periods": {
            row["period"]: {
                key: row[key]
                for key in (
                    "signals",
                    "trades",
                    "pnl",
                    "opportunity_cost",
                    "balance_failed",
                    *picks,
                )
                if key in row
            }
            for row in data["periods"]
            if row["period"] in wanted
        }
    }
    # The card's interval is compared by the floors only: under ``GUARD_STATS_ROW_LIMIT``
    # closed shadow trades the page bootstraps it from the trades themselves.
    if data.get("paper_balance") is not None:
        found["balance_failed"] = data["paper_balance"]["failed"]
    expectancy = data.get("expectancy")
    if expectancy is not None:
        found["expectancy"] = {key: expectancy[key] for key in ("trades", "mean_pnl")}
    return found


def _trading(data: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    totals = data["totals"]
    # The first page's order is the page's own choice: its rows are not compared.
    return {
        "closed": totals["closed"],
        "open": totals["open"],
        "wins": totals["wins"],
        "pnl": totals["total_pnl"],
    }


EXTRACTORS: dict[str, Extractor] = {
    "guards": _guards,
    "opportunity": _opportunity,
    "leaderboard": _leaderboard,
    "summary": _summary,
    "trading": _trading,
}


def extract(page: str, data: dict[str, Any] | None, reference: dict[str, Any]) -> Any:
    """The figures of ``reference``'s shape read from the page's ``data``, or ``None``."""
    extractor = EXTRACTORS.get(page)
    if not data or extractor is None:
        return None
    try:
        return extractor(data, reference)
    except (KeyError, TypeError, IndexError):
        return None


def compare(page: str, data: dict[str, Any] | None, reference: dict[str, Any]) -> str:
    if not data:
        return "page empty"
    found = extract(page, data, reference)
    if found is None:
        return "not shown"
    differences = _differences(_normalise(reference), _normalise(found))
    if not differences:
        return "same"
    return f"DIFFERS: {'; '.join(sorted(differences)[:3])}"


def agree(page: str, rolled: dict[str, Any], raw: dict[str, Any]) -> str:
    """Whether a bare read of what ``page`` reads (``pages_sql.ROLLUP_FIGURES``) gives
    every figure of its raw SQL to the cent: "same" or "DIFFERS: ..."."""
    expected = _normalise(raw)
    found = _normalise(rolled)
    differences = _differences(expected, found) + [
        f"{key} not in the rollups" for key in _missing(expected, found)
    ]
    if not differences:
        return "same"
    return f"DIFFERS: {'; '.join(sorted(differences)[:3])}"


def _missing(expected: Any, found: Any, path: str = "") -> list[str]:
    """Keys of ``expected`` (at any depth) that ``found`` lacks."""
    if not isinstance(expected, dict) or not isinstance(found, dict):
        return []
    out = []
    for key, value in expected.items():
        if key not in found:
            out.append(f"{path}{key}")
        else:
            out += _missing(value, found[key], f"{path}{key}.")
    return out
