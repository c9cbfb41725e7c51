"""The exchange gateway: the one place that talks to exchanges, through a real ccxt object.

What it adds to ccxt:

- retries with exponential backoff on transient failures only (network, timeouts,
  exchange unavailable, rate limits / DDoS protection), a bounded number of times;
  anything else (bad key, permission, unknown symbol, ...) fails at once;
- pagination of OHLCV history that always moves forward, so it cannot loop;
- telling "no new candles" from "the exchange answered garbage": ccxt turns an HTML
  page, an empty body or an empty result into ``[]`` without complaint;
- errors wrapped in ``markets.errors`` classes, so no caller needs to import ccxt.
"""

import difflib
import functools
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from markets.bars import timeframe_delta
from markets.cleaning import RawCandle
from markets.errors import (
    ExchangeDataError,
    ExchangeRequestError,
    ExchangeUnavailableError,
    UnknownExchangeError,
)
from markets.redaction import redact, register_secrets, scrub_exception
from markets.timestamps import ms_from_utc, utc_from_ms

logger = logging.getLogger("markets")

T = TypeVar("T")


@functools.cache
def ccxt_module() -> ModuleType:
    """ccxt, imported on first use. ``import ccxt`` loads every exchange class it has
    (0.4 s of CPU, a quarter of a worker's start), which the processes that never talk to
    an exchange (beat, the web server, most commands, most test workers) need not pay."""
    import ccxt  # deferred on purpose: see above

    return ccxt


@functools.cache
def retryable_errors() -> tuple[type[Exception], ...]:
    """The transient ccxt errors a read is tried again on. NetworkError is the parent of
    the other four; they are listed for the reader."""
    ccxt = ccxt_module()
    return (
        ccxt.NetworkError,
        ccxt.RequestTimeout,
        ccxt.ExchangeNotAvailable,
        ccxt.RateLimitExceeded,
        ccxt.DDoSProtection,
    )


DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_SECONDS = 1.0
DEFAULT_MAX_BACKOFF_SECONDS = 30.0
DEFAULT_MAX_PAGES = 10_000
_SHOWN_BODY = 200
_SHOWN_ERROR = 300

OnPage = Callable[[int, int], None]


def build_exchange(exchange_id: str, *, timeout_ms: int | None = None) -> Any:
    """A real ccxt exchange object for ``exchange_id`` with rate limiting on.

    The timeout comes from ``EXCHANGE_TIMEOUT_MS`` unless given. ``EXCHANGE_API_URL``,
    when set, sends every request of the configured ``EXCHANGE_ID`` to that origin instead
    of the exchange's own hosts (a fake exchange in tests, a private mirror); unset, ccxt's
    URLs are untouched. API credentials come
    from the environment only (``EXCHANGE_API_KEY``/``EXCHANGE_API_SECRET``), are
    attached only when set and only to the configured ``EXCHANGE_ID`` (Kraken keys are
    never sent to another exchange), and are registered for redaction so no log line or
    error message shows them. Raises ``UnknownExchangeError`` for an id ccxt
    does not know. Tests replace this function to hand in an exchange fed offline.
    """
    check_exchange_id(exchange_id)
    config: dict[str, Any] = {
        "timeout": timeout_ms if timeout_ms is not None else settings.EXCHANGE_TIMEOUT_MS,
        "enableRateLimit": True,
    }
    if exchange_id == settings.EXCHANGE_ID:
        if settings.EXCHANGE_API_KEY:
            config["apiKey"] = settings.EXCHANGE_API_KEY
        if settings.EXCHANGE_API_SECRET:
            config["secret"] = settings.EXCHANGE_API_SECRET
        register_secrets(settings.EXCHANGE_API_KEY, settings.EXCHANGE_API_SECRET)
    exchange = getattr(ccxt_module(), exchange_id)(config)
    api_url = getattr(settings, "EXCHANGE_API_URL", "")
    if api_url and exchange_id == settings.EXCHANGE_ID:
        exchange.urls["api"] = api_urls_moved(exchange.urls["api"], api_url)
    return exchange


def api_urls_moved(urls: Any, origin: str) -> Any:
    """ccxt's ``urls['api']`` (a URL, or a dict of them, nested) with the scheme and host
    of every URL replaced by ``origin`` (``http://127.0.0.1:8080``), paths kept.

    For tests and private mirrors only (``EXCHANGE_API_URL``): Kraken's ``public`` and
    ``private`` both become ``origin``, Binance's ``https://api.binance.com/api/v3``
    becomes ``origin + "/api/v3"``.
    """
    if isinstance(urls, dict):
        return {key: api_urls_moved(value, origin) for key, value in urls.items()}
    if not isinstance(urls, str):
        return urls
    parts = urlsplit(urls)
    if not parts.scheme:
        return urls
    return origin.rstrip("/") + urlunsplit(("", "", parts.path, parts.query, parts.fragment))


def check_exchange_id(exchange_id: str) -> None:
    """Raise ``UnknownExchangeError`` (with close matches) unless ccxt knows ``exchange_id``."""
    ccxt = ccxt_module()
    if exchange_id in ccxt.exchanges:
        return
    close = difflib.get_close_matches(exchange_id.lower(), ccxt.exchanges, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else " (see ccxt.exchanges)"
    raise UnknownExchangeError(
        f"unknown exchange id {exchange_id!r}: ccxt has no such exchange{hint}"
    )


class ExchangeGateway:
    """Fetches market data from one exchange with retries and forward-only pagination."""

    def __init__(
        self,
        exchange: Any,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        page_limit: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.exchange = exchange
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.sleep = sleep
        self.clock = clock or (lambda: datetime.now(UTC))
        self.page_limit = page_limit
        self.max_pages = max_pages

    @classmethod
    def for_exchange(
        cls, exchange_id: str, *, timeout_ms: int | None = None, **options: Any
    ) -> "ExchangeGateway":
        """A gateway over ``build_exchange(exchange_id)``; ``options`` go to the constructor.

        The retry budget not given in ``options`` comes from the settings
        ``EXCHANGE_MAX_ATTEMPTS``, ``EXCHANGE_BACKOFF_SECONDS`` and
        ``EXCHANGE_MAX_BACKOFF_SECONDS`` when they exist (the module defaults otherwise).
        """
        for option, name, default in (
            ("max_attempts", "EXCHANGE_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS),
            ("backoff_seconds", "EXCHANGE_BACKOFF_SECONDS", DEFAULT_BACKOFF_SECONDS),
            ("max_backoff_seconds", "EXCHANGE_MAX_BACKOFF_SECONDS", DEFAULT_MAX_BACKOFF_SECONDS),
        ):
            options.setdefault(option, getattr(settings, name, default))
        return cls(build_exchange(exchange_id, timeout_ms=timeout_ms), **options)

    @property
    def exchange_id(self) -> str:
        """The ccxt id of the wrapped exchange, e.g. ``kraken``."""
        return str(self.exchange.id)

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        *,
        on_page: OnPage | None = None,
    ) -> list[RawCandle]:
        """Raw candles opening at or after ``since`` and before ``until`` (default: now),
        page after page, in the order the exchange sent them (cleaning sorts them).

        Each page asks for candles after the last one received, and stops at the first
        page with nothing new, at ``until``/now, or after ``max_pages``. ``on_page`` is
        called with the page number and the number of candles so far.

        Raises ``ExchangeRequestError`` (refused: unknown symbol or timeframe, bad key,
        ...), ``ExchangeUnavailableError`` (transient failures outlasted the retries) or
        ``ExchangeDataError`` (the exchange answered something that is not candles).
        """
        step = timeframe_delta(timeframe)
        self._check_market(symbol, timeframe)
        since_ms = ms_from_utc(since)
        end_ms = ms_from_utc(until if until is not None else self.clock())
        rows: list[RawCandle] = []
        cursor = since_ms
        page = 0
        while cursor < end_ms:
            if page >= self.max_pages:
                raise ExchangeDataError(
                    f"{self.exchange_id}: {symbol} {timeframe} still had candles after "
                    f"{self.max_pages} pages; fetch a shorter range"
                )
            page += 1
            what = (
                f"fetching {symbol} {timeframe} candles since {utc_from_ms(cursor):%Y-%m-%d %H:%M}"
            )
            batch = self._call(
                what, self.exchange.fetch_ohlcv, symbol, timeframe, cursor, self.page_limit
            )
            fresh = [
                row for row in batch if row and row[0] is not None and cursor <= row[0] < end_ms
            ]
            if not fresh:
                if not batch:
                    self._check_empty_page(symbol, timeframe, step, page, cursor, end_ms)
                break
            rows.extend(_raw(row, f"page {page} row {index}") for index, row in enumerate(fresh))
            if on_page is not None:
                on_page(page, len(rows))
            newest = max(int(row[0]) for row in fresh)
            # The next candle cannot have opened yet, or the exchange already went past the end.
            if newest + _ms(step) >= end_ms or any(
                row and row[0] is not None and row[0] >= end_ms for row in batch
            ):
                break
            cursor = newest + 1
        if rows and min(row.time_ms for row in rows) >= since_ms + 2 * _ms(step):
            # Kraken, for one, serves only its latest 720 candles whatever ``since`` says.
            logger.warning(
                "%s: asked for %s %s since %s but the oldest candle served opens at %s; "
                "nothing older was served",
                self.exchange_id,
                symbol,
                timeframe,
                f"{since:%Y-%m-%d %H:%M}",
                f"{utc_from_ms(min(row.time_ms for row in rows)):%Y-%m-%d %H:%M}",
            )
        logger.info(
            "%s: fetched %d %s %s candles in %d page(s)",
            self.exchange_id,
            len(rows),
            symbol,
            timeframe,
            page,
        )
        return rows

    def _check_market(self, symbol: str, timeframe: str) -> None:
        markets = self._call("loading markets", self.exchange.load_markets) or {}
        if symbol not in markets:
            close = difflib.get_close_matches(symbol, list(markets), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ExchangeRequestError(f"{self.exchange_id} has no market {symbol!r}{hint}")
        if not self.exchange.has.get("fetchOHLCV"):
            raise ExchangeRequestError(f"{self.exchange_id} does not provide candles (OHLCV)")
        offered = self.exchange.timeframes or {}
        if offered and timeframe not in offered:
            raise ExchangeRequestError(
                f"{self.exchange_id} has no {timeframe} candles; it offers {', '.join(offered)}"
            )

    def _check_empty_page(
        self, symbol: str, timeframe: str, step: timedelta, page: int, cursor: int, end_ms: int
    ) -> None:
        """Raise ``ExchangeDataError`` when an empty page cannot mean "nothing new"."""
        body = getattr(self.exchange, "last_http_response", None)
        problem = _not_json(body)
        if problem is None and page == 1 and cursor + 2 * _ms(step) <= end_ms:
            problem = (
                "no candles for a range in which closed candles must exist; "
                f"the response was {_shown(body)}"
            )
        if problem is None:
            return
        message = (
            f"{self.exchange_id} answered {symbol} {timeframe} since "
            f"{utc_from_ms(cursor):%Y-%m-%d %H:%M} UTC with {problem}"
        )
        logger.error("%s", message)
        raise ExchangeDataError(message)

    def _call(self, what: str, function: Callable[..., T], *args: Any) -> T:
        return call_with_retries(
            self.exchange_id,
            what,
            function,
            *args,
            max_attempts=self.max_attempts,
            backoff_seconds=self.backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            sleep=self.sleep,
        )


def call_with_retries(
    exchange_id: str,
    what: str,
    function: Callable[..., T],
    *args: Any,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
    max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> T:
    """``function(*args, **kwargs)``, tried up to ``max_attempts`` times with exponential
    backoff while it fails with a transient ccxt error (``retryable_errors()``).

    For reads only (market data, order lookups, balances): never for an order placement,
    which must not be sent twice blindly (see ``markets.orders``). Raises
    ``ExchangeUnavailableError`` when the transient errors outlast the attempts and
    ``ExchangeRequestError`` at once for any other ccxt error; messages are redacted and
    the ccxt error is the ``__cause__``.
    """
    retrying = Retrying(
        stop=stop_after_attempt(max_attempts),
        wait=wait_exponential(multiplier=backoff_seconds, max=max_backoff_seconds),
        retry=retry_if_exception_type(retryable_errors()),
        sleep=sleep,
        before_sleep=_log_retry(exchange_id, what, max_attempts),
    )
    try:
        return retrying(function, *args, **kwargs)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        scrub_exception(last)
        message = (
            f"{exchange_id}: {what} failed {max_attempts} time(s), giving up: {_describe(last)}"
        )
        logger.error("%s", message)
        raise ExchangeUnavailableError(message) from last
    except ccxt_module().BaseError as exc:
        scrub_exception(exc)
        message = f"{exchange_id}: {what} was refused: {_describe(exc)}"
        logger.error("%s", message)
        raise ExchangeRequestError(message) from exc


def _log_retry(exchange_id: str, what: str, max_attempts: int) -> Callable[[RetryCallState], None]:
    def log(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s: %s failed (%s); attempt %d of %d in %.1f s",
            exchange_id,
            what,
            _describe(error),
            state.attempt_number + 1,
            max_attempts,
            wait,
        )

    return log


def _raw(row: list[Any], where: str) -> RawCandle:
    open_, high, low, close, volume = (list(row[1:6]) + [None] * 5)[:5]
    return RawCandle(int(row[0]), open_, high, low, close, volume, where=where)


def _ms(step: timedelta) -> int:
    return step // timedelta(milliseconds=1)


def _not_json(body: object) -> str | None:
    """What is wrong with a response body that should be JSON, or ``None`` if it is JSON."""
    if body is None:
        return None
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    if not text.strip():
        return "an empty body"
    try:
        json.loads(text)
    except ValueError:
        return f"a body that is not JSON: {_shown(text)}"
    return None


def _shown(body: object) -> str:
    text = " ".join(str(body).split())
    return repr(text[:_SHOWN_BODY] + ("..." if len(text) > _SHOWN_BODY else ""))


def _describe(error: BaseException | None) -> str:
    """``ClassName: message``, on one line, shortened, with credentials masked."""
    if error is None:
        return "unknown error"
    text = " ".join(redact(str(error)).split())
    if len(text) > _SHOWN_ERROR:
        text = text[:_SHOWN_ERROR] + "..."
    return f"{type(error).__name__}: {text}"
