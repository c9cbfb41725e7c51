"""``manage.py replay``: run stored candles through the whole pipeline into a replay book.

A shell over ``shadow.services`` (``replay_prepare``, ``replay_prepared``): it parses the
options, shows the progress and prints the summary; the service does the work."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from markets.bars import timeframe_delta
from markets.timestamps import parse_utc
from shadow.replay import ReplayRefusedError
from shadow.services import ReplayOutcome, replay_prepare, replay_prepared


def parse_when(value: str, option: str) -> datetime:
    """An ISO date or date-time; naive values are UTC. ``CommandError`` naming ``option``."""
    try:
        return parse_utc(value)
    except ValueError as error:
        raise CommandError(f"{option}: {error}") from None


class ProgressBars:
    """Two bars, each in candles so neither ever goes back: the candles the engine has
    run, and the candles whose rows are written (the replay does both a chunk of candles
    at a time; the rows written so far are shown beside the second bar)."""

    def __init__(self, *, total: int, disable: bool) -> None:
        self.bars = {
            phase: tqdm(
                total=total,
                unit="candle",
                desc=f"replay: {phase}",
                file=sys.stderr,
                disable=disable,
                mininterval=0.5,
            )
            for phase in ("engine", "writing")
        }
        self.rows_written = 0

    def update(self, phase: str, count: int) -> None:
        """``replay_run``'s progress: ("candles", n) run, ("rows", n) rows, ("written", n)
        candles written."""
        if phase == "rows":
            self.rows_written += count
            self.bars["writing"].set_postfix_str(f"{self.rows_written:,} rows", refresh=False)
            return
        bar = self.bars["engine" if phase == "candles" else "writing"]
        # The estimate counts the traded markets' candles only: never show past 100 %.
        bar.total = max(bar.total or 0, bar.n + count)
        bar.update(count)

    def finish(self) -> None:
        for bar in self.bars.values():
            bar.total = bar.n  # done: 100 %, whatever the estimate was
            bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


class Command(BaseCommand):
    help = (
        "Replay stored candles of one or more markets through strategies, guards, paper "
        "trading and the shadow engine, in one time order, into a replay book of its own."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--exchange", required=True)
        parser.add_argument(
            "--symbol",
            action="append",
            dest="symbols",
            metavar="SYMBOL",
            help="a market to replay; repeat for several markets in one book",
        )
        parser.add_argument(
            "--all-symbols",
            action="store_true",
            help="every market stored for --exchange at --timeframe",
        )
        parser.add_argument("--timeframe", required=True)
        parser.add_argument(
            "--since", help="first candle to replay (ISO); earlier ones are history"
        )
        parser.add_argument("--until", help="last candle to replay (ISO)")
        parser.add_argument(
            "--book",
            help="replay book to write into (default: 'replay EXCHANGE SYMBOL TIMEFRAME'); "
            "a replay book of that name is replaced; the live book never is",
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        timeframe = options["timeframe"]
        try:
            timeframe_delta(timeframe)
        except ValueError as error:
            raise CommandError(f"--timeframe: {error}") from None
        since = parse_when(options["since"], "--since") if options["since"] else None
        until = parse_when(options["until"], "--until") if options["until"] else None
        if since and until and since > until:
            raise CommandError("--since is after --until")
        if options["all_symbols"] and options["symbols"]:
            raise CommandError("give --symbol or --all-symbols, not both")
        if not options["all_symbols"] and not options["symbols"]:
            raise CommandError("give --symbol SYMBOL (repeat it for several) or --all-symbols")
        try:
            plan = replay_prepare(
                exchange=options["exchange"],
                timeframe=timeframe,
                symbols=None if options["all_symbols"] else options["symbols"],
                since=since,
                until=until,
                book=options["book"],
            )
        except ReplayRefusedError as error:
            raise CommandError(_refusal(error)) from None
        for note in plan.notes:
            self.stdout.write(note)
        self.stdout.write(
            f"Writing book {plan.name!r}: {plan.exchange} {', '.join(plan.symbols)} "
            f"{plan.timeframe}; "
            f"strategies: {', '.join(f'{c.name} v{c.version}' for c in plan.strategies)}; "
            f"guards: {', '.join(f'{g.name} v{g.version}' for g in plan.guards) or 'none'}; "
            f"data: {', '.join(plan.sources)}"
        )
        if plan.synthetic:
            self.stdout.write(
                self.style.WARNING("These candles are SYNTHETIC (generated), not market data.")
            )

        bars = ProgressBars(total=plan.candles, disable=options["no_progress"])
        try:
            outcome = replay_prepared(plan, on_progress=bars.update)
        except ReplayRefusedError as error:
            raise CommandError(_refusal(error)) from None
        else:
            bars.finish()
        finally:
            bars.close()
        self._summary(outcome)

    def _summary(self, outcome: ReplayOutcome) -> None:
        result, summary, cost = outcome.result, outcome.summary, outcome.cost
        self.stdout.write(
            self.style.SUCCESS(
                f"Replay done into book {outcome.plan.name!r} (id {result.book.pk})"
                f"{', replacing the earlier one' if result.replaced else ''}: "
                f"{result.written.rows} rows written."
            )
        )
        rows = [
            ("candles", result.candles),
            ("signals", summary.signals),
            ("approved", summary.approved),
            ("blocked", summary.blocked),
            ("rejected", summary.rejected),
            (
                "paper trades (closed)",
                f"{summary.paper_open + summary.paper_closed} ({summary.paper_closed})",
            ),
            ("paper P&L", f"{summary.paper_pnl:.2f}"),
            (
                "shadow trades (closed)",
                f"{summary.shadow_open + summary.shadow_closed} ({summary.shadow_closed})",
            ),
            ("blocked shadow outcomes", cost.closed),
            ("blocked opportunity cost", f"{cost.total_pnl:.2f}"),
        ]
        for label, value in rows:
            self.stdout.write(f"  {label:<26} {value}")


def _refusal(error: ReplayRefusedError) -> str:
    """The service's refusal in the command's words: an argument it names is the option."""
    argument = getattr(error, "argument", "")
    return f"--{argument} {error}" if argument else str(error)
