"""``generate_candles``: store synthetic candles (a seeded random walk) for demos and tests."""

from argparse import ArgumentParser
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from markets.errors import MarketDataError
from markets.management.market_arguments import (
    add_market_arguments,
    market_from_options,
    utc_option,
)
from markets.management.summaries import summary_lines
from markets.services import candles_generate_synthetic
from markets.synthetic import DEFAULT_START_PRICE


class Command(BaseCommand):
    help = (
        "Generate SYNTHETIC candles (a seeded geometric random walk, not market data), "
        "ending with the last candle closed at --end (default now)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_market_arguments(parser)
        parser.add_argument("--count", type=int, required=True, help="how many candles")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument("--end", help="ISO date or date-time, UTC by default (default: now)")
        parser.add_argument(
            "--start-price",
            default=str(DEFAULT_START_PRICE),
            help=f"open of the first candle (default {DEFAULT_START_PRICE})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        exchange, symbol, timeframe = market_from_options(options)
        end = utc_option(options["end"], "--end") if options["end"] else timezone.now()
        if options["count"] < 1:
            raise CommandError("--count must be at least 1")
        try:
            start_price = Decimal(options["start_price"])
        except InvalidOperation:
            raise CommandError(
                f"--start-price {options['start_price']!r} is not a number"
            ) from None
        if not start_price.is_finite() or start_price <= 0:
            raise CommandError("--start-price must be a positive number")
        try:
            summary = candles_generate_synthetic(
                exchange=exchange,
                symbol=symbol,
                timeframe=timeframe,
                count=options["count"],
                end=end,
                seed=options["seed"],
                start_price=start_price,
            )
        except (MarketDataError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.WARNING(
                f"SYNTHETIC data: {summary.loaded} generated candles (seed {options['seed']}), "
                "not market data."
            )
        )
        for line in summary_lines(
            summary, origin=f"the synthetic generator (seed {options['seed']})"
        ):
            self.stdout.write(line)
