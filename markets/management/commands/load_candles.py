"""``load_candles PATH``: load a JSON or CSV candle file into the candle table."""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from markets.errors import MarketDataError
from markets.management.market_arguments import add_market_arguments, market_from_options
from markets.management.summaries import summary_lines
from markets.services import CHUNK_ROWS, candles_load_file


class Command(BaseCommand):
    help = (
        "Load candles from a ccxt OHLCV JSON array or a CSV with a time column and "
        "open,high,low,close,volume. Bad rows are rejected and listed; the rest load. "
        "The file is streamed (memory stays bounded) and stored in one transaction."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", help="the .json or .csv file")
        add_market_arguments(parser)
        parser.add_argument(
            "--chunk-rows",
            type=int,
            default=CHUNK_ROWS,
            help=f"store the kept candles this many at a time (default {CHUNK_ROWS:,}); "
            "the whole file is still one transaction",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        exchange, symbol, timeframe = market_from_options(options)
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            summary = candles_load_file(
                path=path,
                exchange=exchange,
                symbol=symbol,
                timeframe=timeframe,
                now=timezone.now(),
                chunk_rows=options["chunk_rows"],
            )
        except (MarketDataError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for line in summary_lines(summary, origin=str(path)):
            self.stdout.write(line)
        if summary.loaded == 0:
            raise CommandError(
                f"{path}: nothing loaded: all {summary.rows} row(s) were rejected or still open"
            )
