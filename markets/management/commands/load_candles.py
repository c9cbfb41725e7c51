"""``load_candles PATH``: load a JSON or CSV candle file into the candle table."""

import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

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
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        exchange, symbol, timeframe = market_from_options(options)
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        # Two passes over the file (check everything, then store): one bar each, on stderr.
        bars: dict[str, tqdm] = {}

        def progress(stage: str, count: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                label = "checking rows" if stage == "checked" else "storing candles"
                bar = bars[stage] = tqdm(
                    desc=f"{path.name}: {label}", unit=" rows", file=sys.stderr
                )
            bar.update(count - bar.n)

        try:
            summary = candles_load_file(
                path=path,
                exchange=exchange,
                symbol=symbol,
                timeframe=timeframe,
                now=timezone.now(),
                chunk_rows=options["chunk_rows"],
                on_progress=None if options["no_progress"] else progress,
            )
        except (MarketDataError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:
            # The file unreadable, or no room for the accepted rows' temporary spool
            # (60-100 bytes a row, in TMPDIR): nothing was stored.
            where = f" ({exc.filename})" if exc.filename else ""
            raise CommandError(f"{path}: {exc.strerror or exc}{where}; nothing was loaded") from exc
        finally:
            for bar in bars.values():
                bar.close()
        for line in summary_lines(summary, origin=str(path)):
            self.stdout.write(line)
        if summary.loaded == 0:
            raise CommandError(
                f"{path}: nothing loaded: all {summary.rows} row(s) were rejected or still open"
            )
