"""Keeping exchange credentials out of logs and error messages.

API keys come from the environment only (``EXCHANGE_API_KEY``, ``EXCHANGE_API_SECRET``)
and live in the ccxt exchange object, nowhere else. They can still leak into text: ccxt
logs every request's headers (``API-Key``, ``X-MBX-APIKEY``) at DEBUG level on the
``ccxt.base.exchange`` logger, and an exchange or a proxy may echo a key in an error body
that ends up in an exception message.

Every credential value is registered here (``register_secrets``) when an exchange object
is built with it; ``redact`` then replaces each registered value, plain or URL-encoded,
with ``***``. ``RedactSecrets`` is a ``logging.Filter`` doing the same to log records
(message, arguments and traceback); ``install_log_redaction`` puts it on the loggers that
can carry credentials (``markets`` and ccxt's). To cover every handler of the process, add
it to the handlers in ``LOGGING`` as well::

    "filters": {"redact_secrets": {"()": "markets.redaction.RedactSecrets"}},
    "handlers": {"console": {..., "filters": ["redact_secrets"]}},
"""

import contextlib
import logging
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
# Shorter values cannot be real credentials and would mangle ordinary text.
MIN_SECRET_LENGTH = 4
# Loggers that see credentials: ours and ccxt's (request headers at DEBUG).
REDACTED_LOGGERS = ("markets", "ccxt", "ccxt.base.exchange")
# The ccxt exchange attributes that hold credentials.
CREDENTIAL_ATTRIBUTES = (
    "apiKey",
    "secret",
    "password",
    "uid",
    "login",
    "privateKey",
    "walletAddress",
    "token",
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secrets(*values: object) -> None:
    """Remember credential values to mask from now on (empty and short values are ignored)."""
    with _lock:
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                _secrets.update(_variants(value))
    install_log_redaction()


def register_exchange_credentials(exchange: object) -> None:
    """Register every credential a ccxt exchange object carries."""
    register_secrets(*(getattr(exchange, name, None) for name in CREDENTIAL_ATTRIBUTES))


def forget_secrets() -> None:
    """Drop every registered value (for tests)."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    """``text`` with every registered credential (plain or URL-encoded) replaced by ``***``."""
    if not text:
        return text
    # Longest first, so a value that contains another is masked as a whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def scrub_exception(error: BaseException | None) -> None:
    """Redact the arguments of ``error`` and of every exception chained to it, in place,
    so a traceback printed later (``logger.exception``, Celery's failure report) shows
    no credential either."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        with contextlib.suppress(AttributeError, TypeError):  # exotic exception classes
            error.args = tuple(redact(a) if isinstance(a, str) else a for a in error.args)
        error = error.__cause__ or error.__context__


class RedactSecrets(logging.Filter):
    """Masks registered credentials in a record's message, arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for logging to report
            return True
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            scrub_exception(record.exc_info[1])
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_filter = RedactSecrets()


def install_log_redaction(names: Iterable[str] = REDACTED_LOGGERS) -> None:
    """Put the redaction filter on the named loggers (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)


def _variants(value: str) -> set[str]:
    """The value as it may appear in text: plain, percent-encoded, form-encoded."""
    return {value, quote(value, safe=""), quote_plus(value, safe="")}
