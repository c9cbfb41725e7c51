"""``fetch_candles``: fetch candles from an exchange through the gateway and store them."""

import sys
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from markets.errors import MarketDataError
from markets.gateway import DEFAULT_BACKOFF_SECONDS, DEFAULT_MAX_ATTEMPTS, ExchangeGateway
from markets.management.market_arguments import (
    add_market_arguments,
    market_from_options,
    utc_option,
)
from markets.management.summaries import summary_lines
from markets.services import candles_sync


class Command(BaseCommand):
    help = (
        "Fetch closed candles from an exchange (any ccxt id) from --since to --until or now, "
        "retrying transient failures with backoff, and store them."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_market_arguments(parser, default_exchange=settings.EXCHANGE_ID)
        parser.add_argument("--since", required=True, help="ISO date or date-time, UTC by default")
        parser.add_argument("--until", help="ISO date or date-time (default: now)")
        parser.add_argument(
            "--max-attempts",
            type=int,
            default=DEFAULT_MAX_ATTEMPTS,
            help=f"tries per request on transient errors (default {DEFAULT_MAX_ATTEMPTS})",
        )
        parser.add_argument(
            "--backoff",
            type=float,
            default=DEFAULT_BACKOFF_SECONDS,
            help="seconds before the first retry, doubling after each (default "
            f"{DEFAULT_BACKOFF_SECONDS:g})",
        )
        parser.add_argument(
            "--timeout-ms",
            type=int,
            default=None,
            help=f"HTTP timeout per request (default EXCHANGE_TIMEOUT_MS={settings.EXCHANGE_TIMEOUT_MS})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        exchange, symbol, timeframe = market_from_options(options)
        now = timezone.now()
        since = utc_option(options["since"], "--since")
        until = utc_option(options["until"], "--until") if options["until"] else None
        if since >= (until or now):
            raise CommandError(f"--since {since:%Y-%m-%d %H:%M} must be before --until / now")
        if options["max_attempts"] < 1:
            raise CommandError("--max-attempts must be at least 1")
        if options["backoff"] < 0:
            raise CommandError("--backoff cannot be negative")

        try:
            gateway = ExchangeGateway.for_exchange(
                exchange,
                timeout_ms=options["timeout_ms"],
                max_attempts=options["max_attempts"],
                backoff_seconds=options["backoff"],
            )
        except MarketDataError as exc:
            raise CommandError(str(exc)) from exc

        with tqdm(desc=f"{exchange} {symbol} {timeframe}", unit=" candles", file=sys.stderr) as bar:

            def on_page(page: int, candles: int) -> None:
                bar.update(candles - bar.n)
                bar.set_postfix(pages=page)

            try:
                summary = candles_sync(
                    exchange=exchange,
                    symbol=symbol,
                    timeframe=timeframe,
                    since=since,
                    until=until,
                    now=now,
                    gateway=gateway,
                    on_page=on_page,
                )
            except MarketDataError as exc:
                raise CommandError(str(exc)) from exc

        for line in summary_lines(summary, origin=f"the {exchange} API"):
            self.stdout.write(line)
