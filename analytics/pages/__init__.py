"""The pages of the trader's view, one module each, every one with a JSON twin.

A page is a ``Page``: a name (its URL and its API path), a title, a template and a
``build(filters)`` that returns plain data (dicts, lists, str, int, float, ``Decimal``
already rounded with ``analytics.numbers``, ``datetime``). The HTML view renders that
data and the API (``/api/v1/<name>/``) returns the very same data as JSON, so the page
and its twin cannot disagree. ``analytics.api`` holds both views. ``cache`` says what the
page's cached payload depends on besides its book (``analytics.page_cache.Policy``).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from analytics.filters import Filters
from analytics.page_cache import DEFAULT_POLICY, Policy

Builder = Callable[[Filters], dict[str, Any]]


@dataclass(frozen=True)
class Page:
    name: str
    title: str
    template: str
    build: Builder
    path: str
    order: int
    needs_book: bool = True
    default_period: str = "all"
    nav: bool = True
    filters: tuple[str, ...] = ()  # which filter controls the page's form offers
    # ``?sort=`` keys of a paginated table -> the fields to order by (``analytics.sorting``)
    sorts: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    # How its payload is cached: what besides its book its figures depend on.
    cache: Policy = DEFAULT_POLICY


PAGES: dict[str, Page] = {}


def register(page: Page) -> Page:
    if page.name in PAGES:
        raise ValueError(f"page {page.name!r} is registered twice")
    PAGES[page.name] = page
    return page


def nav_pages() -> list[Page]:
    return [page for page in all_pages() if page.nav]


def all_pages() -> list[Page]:
    """Every page, those of the top bar and the others (reached by links), in order."""
    load_pages()
    return sorted(PAGES.values(), key=lambda page: page.order)


def load_pages() -> dict[str, Page]:
    """Import every page module (each registers itself) and return the registry."""
    from analytics.pages import (  # noqa: F401
        blocked,
        fidelity,
        guards,
        health,
        leaderboard,
        learning,
        opportunity,
        performance,
        summary,
        trading,
    )

    return PAGES
