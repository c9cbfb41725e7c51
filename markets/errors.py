"""The errors the markets app raises; callers catch these, never ccxt's own classes.

Only ``markets`` imports ccxt, so every exchange failure leaves this app wrapped in
one of the classes below with the original ccxt exception as ``__cause__``.
"""


class MarketDataError(Exception):
    """Base class: something about market data went wrong; the message says what."""


class CandleFileError(MarketDataError):
    """A candle file cannot be read; the message names the file and the line (or JSON index)."""


class UnknownExchangeError(MarketDataError):
    """The exchange id is not one ccxt knows."""


class ExchangeRequestError(MarketDataError):
    """The exchange refused the request (bad key, unknown symbol, ...): retrying will not help."""


class ExchangeUnavailableError(MarketDataError):
    """The exchange kept failing with a transient error (network, timeout, rate limit, 5xx)
    until the retry budget ran out. Worth trying again later."""


class ExchangeDataError(MarketDataError):
    """The exchange answered, but not with candles: an HTML page, an empty body, or an
    empty result where closed candles must exist. Usually transient (maintenance pages)."""
