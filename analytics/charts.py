"""Chart specs: plain data that static/js/charts.js draws with Chart.js (no geometry here)."""

from collections.abc import Sequence


def chart_spec(
    kind: str,
    labels: Sequence[str],
    series: Sequence[dict[str, object]],
    *,
    y_label: str = "",
) -> dict[str, object]:
    """What ``static/js/charts.js`` draws with Chart.js: ``kind`` "line", "bar" or "barh"
    (horizontal bars); each series a dict with ``name``, ``values`` (floats or ``None``),
    ``tone`` ("good", "bad", "neutral", "muted", or "signed": each bar coloured by its
    sign, positive being good for the trader) and optionally ``fill`` / ``stepped`` /
    ``marker`` (large points only, no line: one highlighted value such as a threshold).
    Plain data, so it goes into the page with ``json_script`` and into the JSON twin."""
    if kind not in {"line", "bar", "barh"}:
        raise ValueError(f"unknown chart kind {kind!r}")
    return {
        "kind": kind,
        "labels": list(labels),
        "y_label": y_label,
        "series": [
            {
                "name": str(item.get("name", "")),
                "values": [None if v is None else float(v) for v in item["values"]],  # type: ignore[attr-defined]
                "tone": item.get("tone", "neutral"),
                "fill": bool(item.get("fill", False)),
                "stepped": bool(item.get("stepped", False)),
                "marker": bool(item.get("marker", False)),
            }
            for item in series
        ],
    }
