"""``manage.py replay``: run stored candles through the whole pipeline into a replay book."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from markets.bars import timeframe_delta
from markets.selectors import candle_count, candle_sources, candles_stored, markets_stored
from markets.timestamps import parse_utc
from shadow.replay import ReplayRefusedError, live_book_named, replay_run
from shadow.selectors import book_summary, opportunity_cost
from signals.models import GuardConfig, StrategyConfig
from signals.services import (
    config_problem,
    guard_configs_default,
    strategy_config_default,
)


def parse_when(value: str, option: str) -> datetime:
    """An ISO date or date-time; naive values are UTC. ``CommandError`` naming ``option``."""
    try:
        return parse_utc(value)
    except ValueError as error:
        raise CommandError(f"{option}: {error}") from None


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
        exchange, timeframe = options["exchange"], options["timeframe"]
        try:
            timeframe_delta(timeframe)
        except ValueError as error:
            raise CommandError(f"--timeframe: {error}") from None
        since = parse_when(options["since"], "--since") if options["since"] else None
        until = parse_when(options["until"], "--until") if options["until"] else None
        if since and until and since > until:
            raise CommandError("--since is after --until")
        symbols = self._symbols(options, exchange, timeframe)
        for symbol in symbols:
            if not candles_stored(
                exchange=exchange, symbol=symbol, timeframe=timeframe, since=since, until=until
            ):
                raise CommandError(
                    f"no stored candles for {exchange} {symbol} {timeframe} in that range; "
                    "load some first with load_candles, fetch_candles or generate_candles"
                )
        name = options["book"] or (
            f"replay {exchange} {symbols[0]} {timeframe}"
            if len(symbols) == 1
            else f"replay {exchange} {timeframe} {len(symbols)} markets"
        )
        live = live_book_named(name)
        if live is not None:
            which = "" if live == name else f" {live!r}"
            raise CommandError(
                f"--book {name!r} is the live book{which} (names are compared regardless of "
                "case and spaces); a replay never writes into it: name another"
            )

        strategies = self._strategies(exchange, symbols, timeframe)
        if not GuardConfig.objects.exists():
            defaults = guard_configs_default()
            self.stdout.write(
                f"No guards configured: enabled {', '.join(g.name for g in defaults)} (default parameters)."
            )
        guards = list(GuardConfig.objects.filter(enabled=True))
        problems = [f"strategy {c.name!r}: {e}" for c in strategies if (e := config_problem(c))]
        problems += [f"guard {g.name!r}: {e}" for g in guards if (e := config_problem(g))]
        if problems:
            raise CommandError(
                "fix these configurations in the admin first: " + "; ".join(problems)
            )

        sources = sorted(
            {
                source
                for symbol in symbols
                for source in candle_sources(exchange=exchange, symbol=symbol, timeframe=timeframe)
            }
        )
        markets = ", ".join(symbols)
        description = (
            f"{exchange} {markets} {timeframe}"
            f"{f', from {since:%Y-%m-%d %H:%M}' if since else ''}"
            f"{f', until {until:%Y-%m-%d %H:%M}' if until else ''} UTC, data: {', '.join(sources)}"
        )
        self.stdout.write(
            f"Writing book {name!r}: {exchange} {markets} {timeframe}; "
            f"strategies: {', '.join(f'{c.name} v{c.version}' for c in strategies)}; "
            f"guards: {', '.join(f'{g.name} v{g.version}' for g in guards) or 'none'}; "
            f"data: {', '.join(sources)}"
        )
        if "synthetic" in sources:
            self.stdout.write(
                self.style.WARNING("These candles are SYNTHETIC (generated), not market data.")
            )

        total = sum(
            candle_count(exchange=exchange, symbol=symbol, timeframe=timeframe, until=until)
            for symbol in symbols
        )
        # Two bars, each in candles so neither ever goes back: the candles the engine has
        # run, and the candles whose rows are written (the replay does both a chunk of
        # candles at a time; the rows written so far are shown beside the second bar).
        bars = {
            phase: tqdm(
                total=total,
                unit="candle",
                desc=f"replay: {phase}",
                file=sys.stderr,
                disable=options["no_progress"],
                mininterval=0.5,
            )
            for phase in ("engine", "writing")
        }
        rows_written = 0

        def progress(phase: str, count: int) -> None:
            nonlocal rows_written
            if phase == "rows":
                rows_written += count
                bars["writing"].set_postfix_str(f"{rows_written:,} rows", refresh=False)
                return
            bar = bars["engine" if phase == "candles" else "writing"]
            # The estimate counts the traded markets' candles only: never show past 100 %.
            bar.total = max(bar.total or 0, bar.n + count)
            bar.update(count)

        try:
            result = replay_run(
                name=name,
                description=description,
                strategies=strategies,
                guards=guards,
                since=since,
                until=until,
                on_progress=progress,
            )
        except ReplayRefusedError as error:
            raise CommandError(str(error)) from None
        else:
            for bar in bars.values():
                bar.total = bar.n  # done: 100 %, whatever the estimate was
                bar.refresh()
        finally:
            for bar in bars.values():
                bar.close()

        book = result.book
        self.stdout.write(
            self.style.SUCCESS(
                f"Replay done into book {name!r} (id {book.pk})"
                f"{', replacing the earlier one' if result.replaced else ''}: "
                f"{result.written.rows} rows written."
            )
        )
        summary, cost = book_summary(book=book), opportunity_cost(book=book)
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

    def _symbols(self, options: dict[str, Any], exchange: str, timeframe: str) -> list[str]:
        if options["all_symbols"]:
            if options["symbols"]:
                raise CommandError("give --symbol or --all-symbols, not both")
            symbols = markets_stored(exchange=exchange, timeframe=timeframe)
            if not symbols:
                raise CommandError(f"no stored candles for {exchange} at {timeframe}")
            return symbols
        if not options["symbols"]:
            raise CommandError("give --symbol SYMBOL (repeat it for several) or --all-symbols")
        return list(dict.fromkeys(options["symbols"]))

    def _strategies(
        self, exchange: str, symbols: Sequence[str], timeframe: str
    ) -> list[StrategyConfig]:
        strategies: list[StrategyConfig] = []
        for symbol in symbols:
            market = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
            found = list(StrategyConfig.objects.filter(enabled=True, **market))
            if not found:
                config = strategy_config_default(**market)
                if not config.enabled:
                    raise CommandError(
                        f"strategy configuration {config.name!r} exists but is disabled"
                    )
                found = [config]
                self.stdout.write(
                    f"No enabled strategy for {symbol}: created {config.name!r} (default parameters)."
                )
            strategies.extend(found)
        return strategies
