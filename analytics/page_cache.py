"""The pages' payloads in Django's cache, keyed by what they are computed from.

A page's figures depend only on its book's rows, and a book's rows change only when the
book is written:

- a replay (or an ablation leg, its own book) writes its book once, in one transaction,
  together with the book's ``BookState`` row; replaying a name again makes a new book
  (a new id);
- the live book advances in one transaction that bumps ``BookState.revision`` by one
  (claimed like an optimistic lock) and writes the new signals, decisions, transitions
  and trade updates beside it; taking on new configuration versions (``BookStrategy``/
  ``BookGuard`` rows, their ``active`` flag) commits just before;
- live orders (``ExchangeOrder``, with ``updated_at``) are written by the execution tasks.

The **stamp** of a book is read in ONE query of index probes whatever the number of
signals (``book_stamps``): the book's id and creation time, its ``BookState`` revision
and ``updated_at``, its newest signal id (index ``signal_book_newest``), a fingerprint of
its configuration rows (newest id and the sum of the active ids), of its orders (count,
newest ``updated_at``) and of its ablation legs (count, newest id). Any commit by the
writers above changes it.

A payload is cached under the page's name, the API version, the book's stamp (and the
compared book's), the book's clock and the normalized filters. The stamp is read BEFORE
the page is built, so a cached payload is never older than its stamp: once a write has
committed, every request reads the new stamp and gets a payload built after the commit.
Nothing is deleted on a write; old keys expire (``PAGE_CACHE_SECONDS``).

Pages that read more than their book say so on their ``Page`` (``cache``, a ``Policy``):

- ``guards`` shows a requested ablation as pending (kept in the cache by
  ``shadow.ablation``): the request's time is part of its stamp;
- ``health`` reads the wall clock, heartbeats and queue depths: never cached (it reads
  counters and rollups, docs/performance.md);
- ``learning`` also reads the book's threshold recommendations and the guard
  configurations: their fingerprint is part of its stamp;
- ``summary``'s health line is computed on every request and put over the cached rest.

Concurrent identical requests do not all recompute: the first takes a short lock in the
cache (``cache.add``) and builds; the others wait for its payload (polling, at most
``PAGE_CACHE_LOCK_SECONDS``) and build it themselves only if it never comes.

``PAGE_CACHE = False`` (a setting, or ``bypass()`` in the benchmark) turns it all off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Exists, OuterRef, Subquery, Sum

from analytics.filters import Filters
from analytics.stamps import stamp_of
from shadow import rollups
from shadow.models import BookRollup, RollupState
from signals.models import Book, Signal

logger = logging.getLogger(__name__)

# Bump when the payload's shape or the stamp's parts change: old entries are then unused.
FORMAT = 1
PREFIX = "pages"


def _setting(name: str, default: int) -> int:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "") or default
    return int(value)


def enabled() -> bool:
    """The ``PAGE_CACHE`` setting (else the environment variable; on by default), unless
    inside ``bypass()``."""
    value = getattr(settings, "PAGE_CACHE", None)
    if value is None:
        value = os.environ.get("PAGE_CACHE", "true").lower() not in ("0", "false", "no", "off")
    return bool(value) and not _bypass.active


def cache_seconds() -> int:
    """How long an entry is kept: only bounds the cache's memory (a write changes the key)."""
    return _setting("PAGE_CACHE_SECONDS", 24 * 3600)


def lock_seconds() -> int:
    return _setting("PAGE_CACHE_LOCK_SECONDS", 30)


class _Bypass(threading.local):
    active = False


_bypass = _Bypass()


@contextmanager
def bypass() -> Iterator[None]:
    """Build every page cold inside this block (the benchmark's "server time")."""
    before = _bypass.active
    _bypass.active = True
    try:
        yield
    finally:
        _bypass.active = before


@dataclass(frozen=True)
class Policy:
    """How one page is cached: ``seconds`` > 0 caps an entry's life (a time bucket in the
    key), 0 means never cached; ``extra`` adds to the stamp; ``live`` refreshes the parts
    of a cached payload that must not come from the cache."""

    cached: bool = True
    seconds: Callable[[], int] | None = None
    extra: Callable[[Filters], str] | None = None
    live: Callable[[dict[str, Any]], dict[str, Any]] | None = None


DEFAULT_POLICY = Policy()


def page_key(page_name: str, filters: Filters, policy: Policy, *, version: int) -> str | None:
    """The cache key of a page's payload (``version``: the API's), or ``None`` when the
    page is not cached."""
    # The raw query string too: the pages build links from it (``Filters.query``).
    parts: list[Any] = [FORMAT, version, page_name, filters.as_json(), filters.period]
    parts.append(sorted(filters.raw.items()))
    parts.append(filters.clock.isoformat() if filters.clock else None)
    parts.append([stamp_of(b) for b in (filters.book, filters.compare) if b is not None])
    if policy.seconds is not None:
        seconds = policy.seconds()
        if seconds <= 0:
            return None
        parts.append(int(time.time() // seconds))
    if policy.extra is not None:
        parts.append(policy.extra(filters))
    digest = hashlib.sha256(
        json.dumps(parts, sort_keys=True, cls=DjangoJSONEncoder).encode()
    ).hexdigest()[:32]
    book = filters.book.pk if filters.book is not None else "-"
    return f"{PREFIX}:{page_name}:{book}:{digest}"


def cached_payload(
    page_name: str,
    filters: Filters,
    build: Callable[[], dict[str, Any]],
    *,
    policy: Policy | None = None,
    version: int,
) -> dict[str, Any]:
    """The payload of ``page_name`` for ``filters``: from the cache when this book's data
    have not changed since it was built, else ``build()`` (and kept). ``policy`` is the
    page's own (``Page.cache``)."""
    policy = policy or DEFAULT_POLICY
    if not enabled() or not policy.cached:
        return build()
    key = page_key(page_name, filters, policy, version=version)
    if key is None:
        return build()
    try:
        payload = cache.get(key)
    except Exception as error:  # the cache is down: the page still answers, cold
        logger.warning("page cache unavailable (%s): %s built without it", error, page_name)
        return build()
    if payload is None:
        payload = fill(key, build)
    elif policy.live is not None:
        payload = policy.live(payload)
    return payload


def fill(
    key: str, build: Callable[[], dict[str, Any]], *, seconds: int | None = None
) -> dict[str, Any]:
    """Build and keep under ``key`` (``seconds``, default ``cache_seconds()``); a request
    that finds another one building waits for its value."""
    keep = cache_seconds() if seconds is None else seconds
    lock = f"{key}:lock"
    if cache.add(lock, 1, timeout=lock_seconds()):
        try:
            payload = build()
            cache.set(key, payload, timeout=keep)
            return payload
        finally:
            cache.delete(lock)
    deadline = time.monotonic() + lock_seconds()
    pause = 0.02
    while time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)
        payload = cache.get(key)
        if payload is not None:
            return payload
        if cache.get(lock) is None:  # the builder failed or gave up: build it ourselves
            break
    payload = build()
    cache.set(key, payload, timeout=keep)
    return payload


def book_signal_counts(books: list[Book]) -> dict[int, int]:
    """Each book's number of signals (the book picker's), from the cache under the
    book's stamp (read with the books by ``with_stamp``); the books written since are
    counted in one grouped query."""
    ids = [book.pk for book in books]
    if not ids:
        return {}
    if not enabled():
        return _count(ids)
    stamps = {book.pk: stamp_of(book) for book in books}
    keys = {
        book_id: f"{PREFIX}:signal-count:{book_id}:"
        + hashlib.sha256(f"{FORMAT}|{stamp}".encode()).hexdigest()[:32]
        for book_id, stamp in stamps.items()
    }
    try:
        found = cache.get_many(list(keys.values()))
    except Exception:  # the cache is down: count them all
        return _count(ids)
    counts = {book_id: found[key] for book_id, key in keys.items() if key in found}
    missing = [book_id for book_id in ids if book_id not in counts]
    if missing:
        fresh = _count(missing)
        counts.update(fresh)
        with suppress(Exception):  # the cache is down: counted again next time
            cache.set_many({keys[b]: n for b, n in fresh.items() if b in keys}, cache_seconds())
    return counts


def _count(ids: list[int]) -> dict[int, int]:
    """Each book's signals, in one query: summed from its rollups' month rows when they
    are built and current (at 1,000,000 signals 88 ms of counting became a few), counted
    from the rows otherwise (a book never built, or written outside the engine since)."""
    built = rollups.built(ids)
    # The month rows sum the day rows before the book's ``months_until``; the day rows
    # from it on are added (shadow.rollups: a live write leaves its last day out of them),
    # as a sum of their own: the test for them is then a join the index range starts at
    # (``day >= months_until``). Inside an OR with the month rows it was a subquery run
    # for every one of the book's day rows: 50-63 ms of every page's HTML at 1,000,000
    # signals, against 3.5 ms now.
    rows = BookRollup.objects.filter(
        book_id__in=Subquery(built), fact=BookRollup.Fact.SIGNALS
    ).order_by()
    months = rows.filter(grain=BookRollup.Grain.MONTH).values_list("book_id").annotate(n=Sum("n"))
    later = RollupState.objects.filter(
        book_id=OuterRef("book_id"), months_until__lte=OuterRef("day")
    )
    days = (
        rows.filter(Exists(later), grain=BookRollup.Grain.DAY)
        .values_list("book_id")
        .annotate(n=Sum("n"))
    )
    # The books to count by their rows, as a subquery the rows are looked up from (an
    # exclusion on the rows themselves would read every signal of the built books).
    unbuilt = Book.objects.filter(pk__in=ids).exclude(pk__in=Subquery(built)).values("pk")
    counted = (
        Signal.objects.filter(book_id__in=Subquery(unbuilt))
        .order_by()
        .values_list("book_id")
        .annotate(n=Count("id"))
    )
    counts = dict.fromkeys(ids, 0)
    for book_id, n in months.union(days, counted, all=True):
        counts[int(book_id)] += int(n)
    return counts
