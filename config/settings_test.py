"""Settings for the test suite: the real PostgreSQL and Redis on 127.0.0.1 unless the
environment says otherwise, a fast password hasher and in-memory cache and mail."""

import os

os.environ.setdefault("DEBUG", "false")
# Never a developer's .env (make run's), in the tests or the manage.py they start.
os.environ.setdefault("READ_DOT_ENV_FILE", "false")
os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/app")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


def _broker_of_xdist_worker() -> None:
    """Under pytest-xdist (``make test`` runs ``-n 2``) worker gwN uses the Redis database
    N below the one given (15, 14, ...): the tests flush their database and run Celery
    workers on it, so two pytest workers must never share one. pytest-django gives each
    its own PostgreSQL database the same way (test_app_gw0, ...). Done once per pytest
    worker: the processes it starts inherit the shifted URL and the marker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or os.environ.get("TEST_BROKER_SHIFTED") == worker:
        return
    from urllib.parse import urlsplit

    url = urlsplit(os.environ["CELERY_BROKER_URL"])
    if url.scheme == "redis":
        base = int(url.path.strip("/") or 0)
        database = (base - int(worker[2:])) % 16
        os.environ["CELERY_BROKER_URL"] = url._replace(path=f"/{database}").geturl()
    os.environ["TEST_BROKER_SHIFTED"] = worker


_broker_of_xdist_worker()

from config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Pages are built on every request in the tests (test_page_cache.py turns it on).
PAGE_CACHE = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files come from the app folders; no collectstatic output is needed.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
# The fault suite's poison task (config/tests/poison.py) exists only on test workers.
CELERY_IMPORTS = [*CELERY_IMPORTS, "config.tests.poison"]  # noqa: F405
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # A commit does not wait for its WAL flush (2.5 ms a commit on this disk, 0.5 ms
    # without): the suite commits tens of thousands of times (migrations, transactional
    # tests' flushes, the workers' tasks). Only a crash of the server itself could lose
    # the last commits, and no test crashes the shared server (the fault tests stop their
    # private ones with ``-m immediate`` only when done with them).
    DATABASES["default"]["OPTIONS"]["options"] += " -c synchronous_commit=off"  # noqa: F405
