"""A fresh, empty database per measurement, and the environment the app runs with on it.

PostgreSQL: a database ``bench_<pid>`` on the server of ``BENCH_POSTGRES_URL`` (default
the local server, user ``postgres``), dropped afterwards even when the run fails; given
a ``template`` (a database made once, e.g. migrated), a copy of it (``CREATE DATABASE
... TEMPLATE``, a file copy: every repetition starts from the same state without paying
for ``migrate`` again). SQLite: a file in a temporary directory, or a copy of one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of an app process on ``database_url``."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **extra,
    }


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def postgres_version() -> str:
    with psycopg.connect(ADMIN_URL) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0].split()[0] if row else '?'}"


@contextmanager
def postgres_database(*, suffix: str = "", template: str | None = None) -> Iterator[str]:
    """A new database ``bench_<pid><suffix>``, empty or a copy of the database named
    ``template``; yields its URL and drops it on the way out."""
    name = f"bench_{os.getpid()}{suffix}"
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(drop)
        connection.execute(create)
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
            connection.execute(drop)


def database_name(url: str) -> str:
    """The database a PostgreSQL URL points at."""
    return urlsplit(url).path.lstrip("/")


@contextmanager
def sqlite_database(
    directory: Path, *, name: str = "bench", template: Path | None = None
) -> Iterator[str]:
    """A new SQLite file ``NAME.sqlite3`` in ``directory``, empty or a copy of the file
    ``template``; yields its URL and deletes it on the way out."""
    path = directory / f"{name}.sqlite3"
    for stale in directory.glob(f"{name}.sqlite3*"):
        stale.unlink()
    if template is not None:
        shutil.copyfile(template, path)
    try:
        yield f"sqlite:///{path}"
    finally:
        for leftover in directory.glob(f"{name}.sqlite3*"):
            leftover.unlink()
