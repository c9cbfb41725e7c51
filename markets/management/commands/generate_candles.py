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
from markets.synthetic import DEFAULT_START_PRICE, plausible_market


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
            help="open of the first candle (default: near the base currency's real level, "
            f"e.g. BTC 90000, SOL 150, XRP 2.2; {DEFAULT_START_PRICE} for any other)",
        )
        parser.add_argument(
            "--daily-volatility",
            type=float,
            help="standard deviation of a day's log return (default: the base currency's "
            "order, e.g. BTC 0.03, SOL 0.055)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        exchange, symbol, timeframe = market_from_options(options)
        end = utc_option(options["end"], "--end") if options["end"] else timezone.now()
        if options["count"] < 1:
            raise CommandError("--count must be at least 1")
        plausible_price, plausible_volatility = plausible_market(symbol)
        volatility = options["daily_volatility"]
        if volatility is None:
            volatility = plausible_volatility
        if not 0 < volatility < 1:
            raise CommandError("--daily-volatility must lie between 0 and 1")
        try:
            start_price = (
                Decimal(options["start_price"]) if options["start_price"] else plausible_price
            )
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
                daily_volatility=volatility,
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
