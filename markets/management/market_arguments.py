"""Command-line options shared by the candle commands, validated into clear errors."""

from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError

from markets.identifiers import check_exchange_name, check_symbol, check_timeframe
from markets.timestamps import parse_utc


def add_market_arguments(parser: ArgumentParser, *, default_exchange: str | None = None) -> None:
    """Add ``--exchange``, ``--symbol`` and ``--timeframe`` (exchange optional when defaulted)."""
    parser.add_argument(
        "--exchange",
        required=default_exchange is None,
        default=default_exchange,
        help="exchange name, e.g. kraken"
        + (f" (default {default_exchange})" if default_exchange else ""),
    )
    parser.add_argument("--symbol", required=True, help="market in BASE/QUOTE form, e.g. BTC/USD")
    parser.add_argument("--timeframe", required=True, help="candle length, e.g. 1m, 5m, 1h, 1d")


def market_from_options(options: dict[str, Any]) -> tuple[str, str, str]:
    """``(exchange, symbol, timeframe)`` from the options, or ``CommandError`` saying what is wrong."""
    try:
        exchange = check_exchange_name(options["exchange"])
        symbol = check_symbol(options["symbol"])
        check_timeframe(options["timeframe"])
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    return exchange, symbol, options["timeframe"]


def utc_option(value: str, option: str) -> datetime:
    """The option's ISO date/date-time as aware UTC, or ``CommandError`` naming the option."""
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise CommandError(f"{option}: {exc}") from exc
