"""Checks for the three names that identify a market: exchange, symbol and timeframe."""

import re
from datetime import timedelta

from django.db.models import CharField

from markets.bars import timeframe_delta
from markets.models import Candle

_SYMBOL = re.compile(r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?$")
_EXCHANGE = re.compile(r"^[A-Za-z0-9._-]+$")


def _max_length(name: str) -> int:
    field = Candle._meta.get_field(name)
    return field.max_length if isinstance(field, CharField) and field.max_length else 0


def check_exchange_name(exchange: str) -> str:
    """The exchange label if it can be stored (letters, digits, ``._-``); else ``ValueError``."""
    if not _EXCHANGE.match(exchange) or len(exchange) > _max_length("exchange"):
        raise ValueError(
            f"exchange {exchange!r} is not a valid name: use letters, digits, '.', '_' or '-' "
            f"(at most {_max_length('exchange')} characters), e.g. kraken"
        )
    return exchange


def check_symbol(symbol: str) -> str:
    """The symbol if it has ccxt's ``BASE/QUOTE`` (or ``BASE/QUOTE:SETTLE``) form; else
    ``ValueError``."""
    if not _SYMBOL.match(symbol) or len(symbol) > _max_length("symbol"):
        raise ValueError(
            f"symbol {symbol!r} is not in BASE/QUOTE form (e.g. BTC/USD, or BTC/USDT:USDT "
            f"for a perpetual; at most {_max_length('symbol')} characters)"
        )
    return symbol


def check_timeframe(timeframe: str) -> timedelta:
    """The candle length of a ccxt timeframe such as ``1m``, ``1h`` or ``1d``; else ``ValueError``."""
    delta = timeframe_delta(timeframe)
    if len(timeframe) > _max_length("timeframe"):
        raise ValueError(f"timeframe {timeframe!r} is too long to store")
    return delta
