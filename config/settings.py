"""Settings, all read through one django-environ ``Env`` object.

A fresh checkout with no variables runs in paper mode on a SQLite file with
``DEBUG`` on. Production sets ``DEBUG=false`` and must then provide ``SECRET_KEY``.
"""

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import django_stubs_ext
import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

# Lets typed generics such as ``admin.ModelAdmin[Candle]`` work at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# ``manage.py`` reads the ``.env`` that ``make run`` leaves (its secret key, DEBUG off,
# its database), so the commands the pages suggest work from any terminal; variables
# already in the environment win over the file. Off elsewhere (tests, gunicorn).
if env.bool("READ_DOT_ENV_FILE", default=False):
    env.read_env(env.str("DOT_ENV_FILE", default=str(BASE_DIR / ".env")))

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or DEBUG=true for development)."
        )
    # Development only: a per-checkout key, never used with DEBUG off.
    SECRET_KEY = "dev-insecure-" + str(BASE_DIR)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "simple_history",
    "axes",
    "markets",
    "signals",
    "shadow",
    "analytics",
    "alerts",
    "work",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Records the logged-in user on every configuration history row a request writes.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "analytics.api.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Seconds a process keeps its database connection between requests (0: a new one per
# request or task). The web unit sets 60: a new PostgreSQL connection is a forked backend
# that must load the catalog for every table a page touches again, on every request.
# Workers and commands keep 0 (Celery's Django fixup closes around each task anyway).
_conn_max_age = env.str("DATABASE_CONN_MAX_AGE", default="0")
if not _conn_max_age.strip().isdigit():
    raise ImproperlyConfigured(
        f"DATABASE_CONN_MAX_AGE must be a whole number of seconds >= 0, not {_conn_max_age!r}."
    )
DATABASES["default"]["CONN_MAX_AGE"] = int(_conn_max_age)
# A kept connection is checked before its first query of a request: one the server
# dropped meanwhile (a restart, an idle timeout) is opened again instead of failing.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = DATABASES["default"]["CONN_MAX_AGE"] != 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, replay) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Write-ahead log: readers never wait for the writer, and a commit is not flushed to
    # disk (only checkpoints are): migrating a new file took 6-7 s, mostly 100 flushes.
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    # A transaction takes the write lock when it begins, waiting for another writer:
    # in WAL a transaction that read first and then writes fails at once ("database is
    # locked") when another process committed in between (make run's steps overlap).
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The pages' aggregates over a million signals spent most of their time compiling
    # (PostgreSQL's JIT: 3.4 s of a 3.9 s query); without it they run in a fraction.
    # A worker cut off by the network in the middle of a transaction keeps its row locks
    # until the server notices it is gone (by default hours: the kernel's 2 h keepalive),
    # and the same work redelivered to another node waits on those locks all that time.
    # Keepalives and a user timeout on both ends of every connection (set per session: no
    # server configuration needed) drop a dead peer within DATABASE_DEAD_PEER_SECONDS, well
    # inside the broker's visibility timeout (config/tests/test_two_nodes.py).
    _dead = env.int("DATABASE_DEAD_PEER_SECONDS", default=60)
    _idle, _interval = max(1, _dead // 2), max(1, _dead // 6)
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options.setdefault(
        "options",
        f"-c jit=off -c tcp_keepalives_idle={_idle} -c tcp_keepalives_interval={_interval} "
        f"-c tcp_keepalives_count=3 -c tcp_user_timeout={_dead * 1000}",
    )
    # libpq's side: the worker gives up on a server that stopped answering.
    for _key, _value in {
        "keepalives": 1,
        "keepalives_idle": _idle,
        "keepalives_interval": _interval,
        "keepalives_count": 3,
        "tcp_user_timeout": _dead * 1000,
    }.items():
        _options.setdefault(_key, _value)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes first: it refuses a locked-out username+IP before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Login lockout (django-axes) ------------------------------------------------------
# After AXES_FAILURE_LIMIT failed logins for one username from one client IP, that pair
# is refused (HTTP 429) until AXES_COOLOFF_MINUTES after its last failure.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=15)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must be positive.")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client IP is REMOTE_ADDR unless TRUSTED_PROXY_COUNT reverse proxies stand in front
# of Django, each appending to X-Forwarded-For: then it is the entry the outermost proxy
# wrote (the TRUSTED_PROXY_COUNT-th from the right); whatever a client puts to its left
# is ignored. With no trusted proxy X-Forwarded-For is never read, so it cannot be forged.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")
if TRUSTED_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
    # python-ipware counts the proxies listed in the header, the client's own entry not
    # included: the proxy next to Django is only in REMOTE_ADDR.
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT - 1
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
    AXES_IPWARE_PROXY_COUNT = None
AXES_IPWARE_PROXY_ORDER = "left-most"
# No "AXES: BEGIN" line from every process that starts (eight at make run's start).
AXES_VERBOSE = False
# Clients may prepend addresses of their own; take the trusted position, not an exact count.
IPWARE_STRICT = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
# In development, and under ``make run`` (DEBUG off), WhiteNoise serves straight from the
# app folders, no collectstatic needed; production serves collectstatic's hashed copies.
STATIC_FROM_APPS = env.bool("STATIC_FROM_APPS", default=DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if STATIC_FROM_APPS
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = STATIC_FROM_APPS
WHITENOISE_AUTOREFRESH = DEBUG

# Every page and the admin load scripts, styles and images from this site only. The one
# inline script allowed, by its hash, is django-celery-beat's crontab help on the periodic
# task form (config/tests/test_error_pages_and_csp.py fails when an upgrade changes it).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; "
    "script-src 'self' 'sha256-QE3U2xYF7B4J2ro1/9oxiKhaWCGW39gB7ocQ/xlD0bE='; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)

# The trader's view's own login page (config/urls.py); the admin keeps its own.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Production hardening (active whenever DEBUG is off) ---------------------------
# ``make run`` serves DEBUG off on http://127.0.0.1 (no TLS there): PLAIN_HTTP=true keeps
# every hardening but the ones that need HTTPS (redirect, secure cookies, HSTS).
PLAIN_HTTP = env.bool("PLAIN_HTTP", default=False)
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not PLAIN_HTTP)
    # Load balancers and deploy gates probe the health check over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = not PLAIN_HTTP
    CSRF_COOKIE_SECURE = not PLAIN_HTTP
    SECURE_HSTS_SECONDS = 0 if PLAIN_HTTP else env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# --- Trading ----------------------------------------------------------------------
EXCHANGE_ID = env.str("EXCHANGE_ID", default="kraken")
EXCHANGE_API_KEY = env.str("EXCHANGE_API_KEY", default="")
EXCHANGE_API_SECRET = env.str("EXCHANGE_API_SECRET", default="")
EXCHANGE_TIMEOUT_MS = env.int("EXCHANGE_TIMEOUT_MS", default=10_000)
# For tests and private mirrors only: send the configured exchange's API requests to this
# origin (scheme and host; the paths are kept). Unused unless set.
EXCHANGE_API_URL = env.str("EXCHANGE_API_URL", default="")
# The gateway's retry budget for transient exchange errors (network, 429, 418, 5xx).
EXCHANGE_MAX_ATTEMPTS = env.int("EXCHANGE_MAX_ATTEMPTS", default=5)
EXCHANGE_BACKOFF_SECONDS = env.float("EXCHANGE_BACKOFF_SECONDS", default=1.0)
EXCHANGE_MAX_BACKOFF_SECONDS = env.float("EXCHANGE_MAX_BACKOFF_SECONDS", default=30.0)
# How long after it took an order an exchange may still not list it in its open and
# closed orders (ADR 0017): an order whose send failed is sent again only after a lookup
# begun this long past the send's timeout found nothing. Per ccxt id
# (``ORDER_VISIBILITY_SECONDS=kraken=10,binance=5``); others get the default.
ORDER_VISIBILITY_SECONDS = {
    exchange_id: float(seconds)
    for exchange_id, seconds in env.dict("ORDER_VISIBILITY_SECONDS", default={}).items()
}
ORDER_VISIBILITY_DEFAULT_SECONDS = env.float("ORDER_VISIBILITY_DEFAULT_SECONDS", default=10.0)
TRADING_MODE = env.str("TRADING_MODE", default="paper")
if TRADING_MODE not in {"paper", "live"}:
    raise ImproperlyConfigured(f"TRADING_MODE must be 'paper' or 'live', not {TRADING_MODE!r}.")
if TRADING_MODE == "live" and not (EXCHANGE_API_KEY and EXCHANGE_API_SECRET):
    raise ImproperlyConfigured(
        "TRADING_MODE=live places real orders and needs EXCHANGE_API_KEY and "
        "EXCHANGE_API_SECRET in the environment; unset TRADING_MODE to paper-trade."
    )


def _decimal(name: str, default: str) -> Decimal:
    raw = env.str(name, default=default)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a decimal number, not {raw!r}.") from None
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"{name} must be a finite number >= 0, not {raw!r}.")
    return value


def _by_quote(name: str) -> dict[str, Decimal]:
    """``BTC=0.02,ETH=0.5``: a positive amount per quote currency."""
    out: dict[str, Decimal] = {}
    for item in env.list(name, default=[]):
        quote, sep, amount = item.partition("=")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            value = Decimal("NaN")
        if not sep or not quote.strip() or not value.is_finite() or value <= 0:
            raise ImproperlyConfigured(
                f"{name} must read like BTC=0.02,ETH=0.5 (positive amounts), not {item!r}."
            )
        out[quote.strip().upper()] = value
    return out


# Fill model and sizing (shared by paper trading and the shadow engine). These only seed
# NEW books: a book freezes them at its start (signals.economics), and its ablation legs
# and later live runs trade on the frozen copy.
FILL_SLIPPAGE_BPS = _decimal("FILL_SLIPPAGE_BPS", "5")
FILL_FEE_RATE = _decimal("FILL_FEE_RATE", "0.0026")
# Money figures are sized in this currency and converted to each market's quote.
REFERENCE_CURRENCY = env.str("REFERENCE_CURRENCY", default="USD").upper()
# "notional": every trade is FILL_NOTIONAL (reference currency) worth of the base;
# "risk": every trade loses FILL_RISK_FRACTION of the paper balance at its stop.
FILL_SIZING = env.str("FILL_SIZING", default="notional")
if FILL_SIZING not in {"notional", "risk"}:
    raise ImproperlyConfigured(f"FILL_SIZING must be 'notional' or 'risk', not {FILL_SIZING!r}.")
FILL_NOTIONAL = _decimal("FILL_NOTIONAL", "1000")
if FILL_NOTIONAL == 0:
    raise ImproperlyConfigured("FILL_NOTIONAL must be positive.")
FILL_RISK_FRACTION = _decimal("FILL_RISK_FRACTION", "0.01")
if not 0 < FILL_RISK_FRACTION <= 1:
    raise ImproperlyConfigured("FILL_RISK_FRACTION must be above 0 and at most 1.")
# Paper balance (reference currency, converted to each quote): a signal it cannot pay fails.
PAPER_BALANCE = _decimal("PAPER_BALANCE", "10000")
if PAPER_BALANCE <= 0:
    raise ImproperlyConfigured("PAPER_BALANCE must be positive.")
# Per quote currency, in that currency: a notional and a paper balance that override the
# conversion from REFERENCE_CURRENCY (e.g. NOTIONAL_BY_QUOTE=BTC=0.02).
NOTIONAL_BY_QUOTE = _by_quote("NOTIONAL_BY_QUOTE")
PAPER_BALANCE_BY_QUOTE = _by_quote("PAPER_BALANCE_BY_QUOTE")
# A live signal whose candle closed longer ago than this is stale and rejected.
SIGNAL_MAX_AGE = timedelta(minutes=env.int("SIGNAL_MAX_AGE_MINUTES", default=180))

# --- Celery -----------------------------------------------------------------------
# Whether a broker was configured at all: ``make run`` configures none, and then the one
# piece of work its pages start (an ablation) runs in a background thread of the web
# process instead of a message to whatever listens on Redis's default port.
BROKER_CONFIGURED = bool(env.str("CELERY_BROKER_URL", default=""))
TASKS_IN_WEB_PROCESS = env.bool("TASKS_IN_WEB_PROCESS", default=not BROKER_CONFIGURED)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every task has a time limit; tasks that need another set their own.
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 570
CELERY_TASK_DEFAULT_QUEUE = "default"
# A task whose worker process dies is redelivered (acks_late, reject_on_worker_lost);
# past this many deliveries it is quarantined instead (config/task_base.py).
TASK_MAX_DELIVERIES = env.int("TASK_MAX_DELIVERIES", default=3)
# An unacknowledged message (its whole worker was killed) comes back after this long.
# Longer than the longest task (CELERY_TASK_TIME_LIMIT), or a slow task would run twice.
# Workers look for such messages every interval x throttle seconds (kombu: 10 x 10).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
}
# Task heartbeats (analytics/heartbeats.py): each task name's row is written at most once
# per this many seconds per worker process (failures and recoveries at once); the health
# page's "late" (two intervals without a success) keeps a wide margin over it.
HEARTBEAT_WRITE_SECONDS = env.float("HEARTBEAT_WRITE_SECONDS", default=5.0)
# Task modules outside the apps' ``tasks.py`` (autodiscovery reads only those).
CELERY_IMPORTS = ["analytics.recovery", "analytics.reports"]
CELERY_TASK_ROUTES = {
    "markets.*": {"queue": "market_data"},
    "signals.*": {"queue": "signals"},
    "shadow.*": {"queue": "shadow"},
    "analytics.*": {"queue": "analytics"},
    # Alert delivery waits on other people's servers: a queue of its own, never in the
    # pipeline's way (alerts/services.py).
    "alerts.deliver*": {"queue": "alerts"},
    "alerts.*": {"queue": "analytics"},
}
# django-celery-beat's DatabaseScheduler that checks the single-beat lock on every tick
# and exits the moment it is lost (config/beat_lock.py).
CELERY_BEAT_SCHEDULER = "config.beat_lock:SingleBeatScheduler"
# How often beat writes its periodic tasks' last-run times to the database (celery's
# default is 180 s); the late-task alert allows for this lag (alerts/watchers.py).
BEAT_SYNC_EVERY_SECONDS = env.int("BEAT_SYNC_EVERY_SECONDS", default=30)
# Installed into django-celery-beat's tables when beat starts; editable in the admin.
CELERY_BEAT_SCHEDULE = {
    "sync-candles": {"task": "signals.sync_watched_markets", "schedule": 60.0},
    "advance-live-books": {"task": "shadow.advance_live_books", "schedule": 60.0},
    "monitor-pipeline": {"task": "analytics.monitor_pipeline", "schedule": 300.0},
    "evaluate-alerts": {"task": "alerts.evaluate", "schedule": 60.0},
    "deliver-due-alerts": {"task": "alerts.deliver_due", "schedule": 60.0},
    "recover-stuck-signals": {"task": "analytics.recover_stuck_signals", "schedule": 300.0},
    "daily-report": {"task": "analytics.daily_report", "schedule": crontab(hour=0, minute=5)},
    "recommend-thresholds": {
        "task": "analytics.recommend_thresholds",
        "schedule": crontab(hour=3, minute=17),
    },
    # One-off work whose message the broker lost is sent again (work/services.py).
    "resend-lost-work": {"task": "work.resend_lost", "schedule": 300.0},
}
# --- Stuck signals (analytics/stuck.py): how long a signal may stay in a state ------
STUCK_SIGNAL_DEADLINES = {
    "generated": timedelta(minutes=env.int("STUCK_GENERATED_MINUTES", default=10)),
    # candles after the decision
    "approved": env.int("STUCK_APPROVED_CANDLES", default=2),
    # candles past the trade's max hold
    "executed": env.int("STUCK_EXECUTED_CANDLES", default=2),
}
# One-off work (reports, recommendations, ablation legs) is recorded in the database and
# sent again when not started this long after its last send (work/services.py); given up
# after WORK_MAX_SENDS sends; finished requests are kept WORK_KEEP_DAYS.
WORK_RESEND_AFTER_SECONDS = env.int("WORK_RESEND_AFTER_SECONDS", default=600)
WORK_MAX_SENDS = env.int("WORK_MAX_SENDS", default=5)
WORK_KEEP_DAYS = env.int("WORK_KEEP_DAYS", default=30)
# --- Alerts (channels are configured in the admin) ---------------------------------
# Email alerts go through Django's mail settings: EMAIL_URL like
# smtp+tls://user:password@smtp.example.org:587 (the console backend when unset).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="signal-pipeline@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# One alert per kind and subject within this window; repeats are counted, not sent.
ALERT_MIN_INTERVAL_SECONDS = env.int("ALERT_MIN_INTERVAL_SECONDS", default=900)
# Each delivery of an alert to a channel gets this much wall-clock time (a server that
# trickles its answer cannot stretch it); a failed one is retried after a backoff that
# doubles from ALERT_RETRY_BASE_SECONDS up to ALERT_RETRY_MAX_SECONDS (below the broker's
# visibility timeout), and given up only after ALERT_DELIVERY_GIVE_UP_HOURS.
ALERT_DELIVERY_DEADLINE_SECONDS = env.float("ALERT_DELIVERY_DEADLINE_SECONDS", default=10.0)
ALERT_RETRY_BASE_SECONDS = env.float("ALERT_RETRY_BASE_SECONDS", default=15.0)
ALERT_RETRY_MAX_SECONDS = env.float("ALERT_RETRY_MAX_SECONDS", default=600.0)
ALERT_DELIVERY_GIVE_UP_HOURS = env.float("ALERT_DELIVERY_GIVE_UP_HOURS", default=24.0)
# A periodic task is late when its next run after the last one is overdue by more than
# BEAT_SYNC_EVERY_SECONDS (beat's write lag) plus this margin or one interval, whichever
# is longer (alerts/watchers.py).
ALERT_TASK_LATE_MARGIN_SECONDS = env.int("ALERT_TASK_LATE_MARGIN_SECONDS", default=120)
# Market-data task failures in a row (each after the gateway's retries) before an alert.
ALERT_EXCHANGE_ERROR_STREAK = env.int("ALERT_EXCHANGE_ERROR_STREAK", default=3)

# --- Guard verdicts -------------------------------------------------------------------
# Below this many closed shadow trades a guard's verdict is "inconclusive".
GUARD_VERDICT_MIN_SAMPLES = env.int("GUARD_VERDICT_MIN_SAMPLES", default=5)
# Honest verdicts (docs/guard-effectiveness.md, docs/learning-engine.md): the seed of every
# randomisation test and bootstrap, the walk-forward's folds, and the largest share of a
# guard's signals a recommended threshold may block.
GUARD_STATS_SEED = env.int("GUARD_STATS_SEED", default=20261207)
# Past this many closed shadow trades in a pool, the honest verdicts read the book's
# rollups (sums per UTC exit day; intervals clustered by day: ADR 0023), not every trade.
GUARD_STATS_ROW_LIMIT = env.int("GUARD_STATS_ROW_LIMIT", default=20_000)
LEARNING_FOLDS = env.int("LEARNING_FOLDS", default=3)
# Past this many decisions of a book's tunable guards, the learning curves read the guard
# histograms kept with the rollups, thresholds on a fixed grid (ADR 0024).
LEARNING_ROW_LIMIT = env.int("LEARNING_ROW_LIMIT", default=20_000)
LEARNING_MAX_BLOCK_SHARE = env.float("LEARNING_MAX_BLOCK_SHARE", default=0.5)
# Up to this many closed trades in its period the performance page draws the drawdown
# after each close (one read of their P&L); past it, per UTC day from the equity segments.
PERFORMANCE_DRAWDOWN_ROW_LIMIT = env.int("PERFORMANCE_DRAWDOWN_ROW_LIMIT", default=20_000)

# --- Cache (pending ablation legs, ...): Redis shared by every web and worker process
# when CACHE_URL is set (production); this process's memory otherwise (make run).
CACHE_URL = env.str("CACHE_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    ),
    # ``{% cache ... fragment_key %}`` in the page templates: the key is the digest of the
    # fragment's data (analytics.api.fragment_key), so a fragment is the same wherever it
    # is kept; kept in each process's memory, a hit costs no Redis round trip (the learning
    # page read 18 fragments a request: 8 of its 18 ms of CPU). A new payload is rendered
    # once per web worker; 200 fragments a process at most (a page body is tens of KB).
    "template_fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "template-fragments",
        "OPTIONS": {"MAX_ENTRIES": 200},
    },
}

# --- Page cache (analytics/page_cache.py): each page's figures cached under a stamp of
# its book's data, so a page is never older than the book's last committed write.
PAGE_CACHE = env.bool("PAGE_CACHE", default=True)
PAGE_CACHE_SECONDS = env.int("PAGE_CACHE_SECONDS", default=86400)
PAGE_CACHE_LOCK_SECONDS = env.int("PAGE_CACHE_LOCK_SECONDS", default=30)

# --- Health check (/healthz) -------------------------------------------------------
# Celery beat counts as late when no periodic task ran for longer than this.
HEALTH_BEAT_MAX_AGE_SECONDS = env.int("HEALTH_BEAT_MAX_AGE_SECONDS", default=600)

# --- Logging: plain lines with the seed's tags kept in the messages ----------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Exchange keys never reach a log line, whichever logger wrote it.
    "filters": {"redact_secrets": {"()": "markets.redaction.RedactSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
