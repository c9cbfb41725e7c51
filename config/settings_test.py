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

from config.settings import *  # noqa: F403

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
