"""``manage.py replay``: run stored candles through the whole pipeline into a replay book."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from markets.bars import timeframe_delta
from markets.selectors import candle_sources, candle_times
from shadow.replay import replay_market
from shadow.selectors import book_summary, opportunity_cost
from signals.models import Book, GuardConfig, StrategyConfig
from signals.services import guard_configs_default, strategy_config_default


def parse_when(value: str, option: str) -> datetime:
    """An ISO date or date-time; naive values are UTC. ``CommandError`` naming ``option``."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value) if len(value) == 10 else None
        if day is None:
            raise CommandError(
                f"{option}: {value!r} is not an ISO date or date-time (e.g. 2024-01-31 or 2024-01-31T12:00)"
            )
        moment = datetime(day.year, day.month, day.day)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def _log_level(level: int, *names: str) -> Iterator[None]:
    # A line per signal and transition would bury the progress bar of a replay; the rows
    # are all in the book, and -v 2 shows the lines.
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(level, logger.level))
    try:
        yield
    finally:
        for logger, old in zip(loggers, before, strict=True):
            logger.setLevel(old)


def _problem(config: StrategyConfig | GuardConfig) -> str | None:
    """Why a configuration cannot run, or ``None``."""
    try:
        config.clean()
    except ValidationError as error:
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return None


class Command(BaseCommand):
    help = (
        "Replay stored candles of one market through strategies, guards, paper trading and "
        "the shadow engine, in time order, into a book of its own."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--exchange", required=True)
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--timeframe", required=True)
        parser.add_argument(
            "--since", help="first candle to replay (ISO); earlier ones are history"
        )
        parser.add_argument("--until", help="last candle to replay (ISO)")
        parser.add_argument(
            "--book",
            help="book to write into (default: 'replay EXCHANGE SYMBOL TIMEFRAME'); "
            "an existing book of that name is replaced",
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        exchange, symbol, timeframe = options["exchange"], options["symbol"], options["timeframe"]
        try:
            timeframe_delta(timeframe)
        except ValueError as error:
            raise CommandError(f"--timeframe: {error}") from None
        since = parse_when(options["since"], "--since") if options["since"] else None
        until = parse_when(options["until"], "--until") if options["until"] else None
        if since and until and since > until:
            raise CommandError("--since is after --until")
        market = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
        times = candle_times(**market, since=since, until=until)
        if not times:
            raise CommandError(
                f"no stored candles for {exchange} {symbol} {timeframe} in that range; "
                "load some first with load_candles, fetch_candles or generate_candles"
            )

        configs = list(StrategyConfig.objects.filter(enabled=True, **market))
        if not configs:
            config = strategy_config_default(**market)
            if not config.enabled:
                raise CommandError(f"strategy configuration {config.name!r} exists but is disabled")
            configs = [config]
            self.stdout.write(
                f"No enabled strategy for this market: created {config.name!r} (default parameters)."
            )
        if not GuardConfig.objects.exists():
            guards = guard_configs_default()
            self.stdout.write(
                f"No guards configured: enabled {', '.join(g.kind for g in guards)} (default parameters)."
            )
        enabled = list(GuardConfig.objects.filter(enabled=True))
        problems = [f"strategy {c.name!r}: {e}" for c in configs if (e := _problem(c))]
        problems += [f"guard {g.kind!r}: {e}" for g in enabled if (e := _problem(g))]
        if problems:
            raise CommandError(
                "fix these configurations in the admin first: " + "; ".join(problems)
            )
        enabled_guards = [g.kind for g in enabled]

        name = options["book"] or f"replay {exchange} {symbol} {timeframe}"
        sources = candle_sources(**market)
        with transaction.atomic():
            replaced = Book.objects.filter(name=name).delete()[0] > 0
            book = Book.objects.create(
                name=name,
                kind=Book.Kind.REPLAY,
                description=f"{exchange} {symbol} {timeframe}, {times[0]:%Y-%m-%d %H:%M} to "
                f"{times[-1]:%Y-%m-%d %H:%M} UTC, data: {', '.join(sources)}",
            )
        self.stdout.write(
            f"{'Replacing' if replaced else 'Writing'} book {name!r}: {len(times)} candles "
            f"({times[0]:%Y-%m-%d %H:%M} to {times[-1]:%Y-%m-%d %H:%M} UTC), "
            f"strategies: {', '.join(c.name for c in configs)}; guards: {', '.join(enabled_guards) or 'none'}; "
            f"data: {', '.join(sources)}"
        )
        if "synthetic" in sources:
            self.stdout.write(
                self.style.WARNING("These candles are SYNTHETIC (generated), not market data.")
            )

        quiet = logging.WARNING if options["verbosity"] < 2 else logging.NOTSET
        with (
            _log_level(quiet, "signals", "shadow"),
            tqdm(
                total=len(times),
                unit="candle",
                desc="replay",
                file=sys.stderr,
                disable=options["no_progress"],
                mininterval=0.5,
            ) as bar,
        ):
            candles = replay_market(
                book=book,
                configs=configs,
                **market,
                since=since,
                until=until,
                on_candle=lambda _t: bar.update(),
            )

        self.stdout.write(self.style.SUCCESS(f"Replay done into book {name!r} (id {book.pk})."))
        summary, cost = book_summary(book=book), opportunity_cost(book=book)
        rows = [
            ("candles", candles),
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
