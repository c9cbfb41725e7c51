"""The errors the markets app raises; callers catch these, never ccxt's own classes.

Only ``markets`` imports ccxt, so every exchange failure leaves this app wrapped in
one of the classes below with the original ccxt exception as ``__cause__``. Messages
never contain API credentials (``markets.redaction``).
"""


class MarketDataError(Exception):
    """Base class of everything the markets app raises (market data and orders); the
    message says what went wrong."""


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


class OrderError(MarketDataError):
    """Base class of order placement failures that are not a plain rejection (a rejected
    order is a result, not an error). Carries the client order id and the symbol."""

    def __init__(self, message: str, *, client_order_id: str, symbol: str) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id
        self.symbol = symbol


class OrderStateUnknownError(OrderError):
    """A placement failed in a way that may or may not have reached the exchange, and the
    lookup by client order id failed or did not list it (yet). Do NOT place it again
    until a lookup begun past the exchange's visibility delay has found nothing
    (``OrderGateway.lookup``, ADR 0017)."""


class OrderNotPlacedError(OrderError):
    """Nothing was sent: the send was due past its ``send_before`` deadline. Safe to try
    again (under a new claim)."""
