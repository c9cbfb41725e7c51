"""The text the candle commands print about a load, sync or generation."""

from markets.services import CandleLoadSummary

SHOWN_REJECTIONS = 100
SHOWN_GAPS = 20


def summary_lines(summary: CandleLoadSummary, *, origin: str) -> list[str]:
    """Human-readable lines: loaded, restated, rejected (each reason, with the spliced
    and filler counts), conflicts, merged, out of order, open candle, gaps."""
    cleaned = summary.cleaned
    market = f"{summary.exchange} {summary.symbol} {summary.timeframe}"
    if summary.first and summary.last:
        span = f", {summary.first:%Y-%m-%d %H:%M} to {summary.last:%Y-%m-%d %H:%M} UTC"
    else:
        span = ""
    lines = [
        f"Read {summary.rows} row(s). Loaded {summary.loaded} candles ({summary.created} new, "
        f"{summary.unchanged} already stored) into {market} from {origin}{span}."
    ]
    if summary.restated:
        lines.append(
            f"Restated: {summary.restated} candle(s) already stored with other values were "
            "kept as first stored, not overwritten (the log lists them)."
        )
    kinds = []
    if cleaned.spliced:
        kinds.append(f"{cleaned.spliced} spliced repeat(s)")
    if cleaned.fillers:
        kinds.append(f"{cleaned.fillers} filler(s) without trades")
    if cleaned.out_of_range:
        kinds.append(f"{cleaned.out_of_range} out of the stored range")
    detail = f" (of which {', '.join(kinds)})" if kinds else ""
    lines.append(f"Rejected {cleaned.rejected} row(s){detail}{':' if cleaned.rejected else '.'}")
    shown = summary.rejections[:SHOWN_REJECTIONS]
    lines += [f"  {rejection}" for rejection in shown]
    if cleaned.rejected > len(shown):
        lines.append(f"  ... and {cleaned.rejected - len(shown)} more")
    if cleaned.conflicted:
        lines.append(
            f"Conflicts: {cleaned.conflicted} timestamp(s) given different values by "
            "different rows (none of those rows loaded):"
        )
        conflicts = summary.conflicts[:SHOWN_REJECTIONS]
        lines += [f"  {conflict}" for conflict in conflicts]
        if cleaned.conflicted > len(conflicts):
            lines.append(f"  ... and {cleaned.conflicted - len(conflicts)} more")
    else:
        lines.append("Conflicts: none.")
    lines.append(f"Merged {summary.merged} duplicate timestamp(s) (identical rows stored once).")
    if cleaned.out_of_order:
        lines.append(
            f"Out of order: {cleaned.out_of_order} row(s) came after a later candle in the "
            "file; all were stored by open time."
        )
    if summary.dropped_open:
        lines.append("Left out the last candle: it was still open.")
    if cleaned.gap_total:
        lines.append(f"Gaps: {cleaned.gap_total} ({cleaned.missing} missing candle(s)):")
        gaps = summary.gaps[:SHOWN_GAPS]
        lines += [f"  {gap}" for gap in gaps]
        if cleaned.gap_total > len(gaps):
            lines.append(f"  ... and {cleaned.gap_total - len(gaps)} more")
    else:
        lines.append("Gaps: none.")
    return lines
