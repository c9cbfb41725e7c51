"""The text the candle commands print about a load, sync or generation."""

from markets.services import CandleLoadSummary

SHOWN_REJECTIONS = 100
SHOWN_GAPS = 20


def summary_lines(summary: CandleLoadSummary, *, origin: str) -> list[str]:
    """Human-readable lines: loaded, rejected (each reason), conflicts, merged, open candle,
    gaps."""
    market = f"{summary.exchange} {summary.symbol} {summary.timeframe}"
    if summary.first and summary.last:
        span = f", {summary.first:%Y-%m-%d %H:%M} to {summary.last:%Y-%m-%d %H:%M} UTC"
    else:
        span = ""
    lines = [
        f"Loaded {summary.loaded} candles ({summary.created} new, {summary.unchanged} already "
        f"stored) into {market} from {origin}{span}."
    ]
    if summary.restated:
        lines.append(
            f"Restated: {summary.restated} candle(s) already stored with other values were "
            "kept as first stored, not overwritten (the log lists them)."
        )
    lines.append(f"Rejected {len(summary.rejections)} row(s){':' if summary.rejections else '.'}")
    lines += [f"  {rejection}" for rejection in summary.rejections[:SHOWN_REJECTIONS]]
    if len(summary.rejections) > SHOWN_REJECTIONS:
        lines.append(f"  ... and {len(summary.rejections) - SHOWN_REJECTIONS} more")
    if summary.conflicts:
        lines.append(
            f"Conflicts: {len(summary.conflicts)} timestamp(s) given different values by "
            "different rows (none of those rows loaded):"
        )
        lines += [f"  {conflict}" for conflict in summary.conflicts[:SHOWN_REJECTIONS]]
        if len(summary.conflicts) > SHOWN_REJECTIONS:
            lines.append(f"  ... and {len(summary.conflicts) - SHOWN_REJECTIONS} more")
    else:
        lines.append("Conflicts: none.")
    lines.append(f"Merged {summary.merged} duplicate timestamp(s) (identical rows stored once).")
    if summary.dropped_open:
        lines.append("Left out the last candle: it was still open.")
    if summary.gaps:
        lines.append(f"Gaps: {len(summary.gaps)} ({summary.cleaned.missing} missing candle(s)):")
        lines += [f"  {gap}" for gap in summary.gaps[:SHOWN_GAPS]]
        if len(summary.gaps) > SHOWN_GAPS:
            lines.append(f"  ... and {len(summary.gaps) - SHOWN_GAPS} more")
    else:
        lines.append("Gaps: none.")
    return lines
