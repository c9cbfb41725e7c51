"""The books a page can show and what describes them: the picker's list, the data sources, the live books and the quote currency."""

from analytics.page_cache import book_signal_counts
from analytics.stamps import with_stamp
from markets.admin_format import quote_currency
from markets.selectors import candle_sources_of_markets
from signals.models import (
    Book,
    BookStrategy,
    Signal,
)


def books() -> list[Book]:
    """The book picker's books: every book that is not an ablation leg, newest first, each
    with ``signal_count`` and ``legs``, its ablation legs (a leg's own legs included) by
    name, each with ``signal_count``.

    The counts come from the page cache under each book's data stamp (one query for every
    book's stamp, index probes only); only the books written since their count was cached
    are counted again, in one grouped query."""
    found = list(with_stamp(Book.objects.order_by("-created_at", "-id")))
    counts = book_signal_counts(found)
    by_id = {book.pk: book for book in found}
    for book in found:
        book.signal_count = counts.get(book.pk, 0)  # type: ignore[attr-defined]
        book.legs = []  # type: ignore[attr-defined]
    top = []
    for book in found:
        root, seen = book, {book.pk}
        while root.ablation_of_id in by_id and root.ablation_of_id not in seen:
            root = by_id[root.ablation_of_id]
            seen.add(root.pk)
        if root is book:
            top.append(book)
        else:
            root.legs.append(book)  # type: ignore[attr-defined]
    for book in top:
        book.legs.sort(key=lambda leg: (leg.name, leg.pk))  # type: ignore[attr-defined]
    return top


def data_sources(*, book: Book) -> list[str]:
    """The candle sources (exchange, file, synthetic) behind the markets ``book`` trades:
    those of its signals and of the strategy configurations run in it."""
    # A signal's market is that of the strategy configuration that made it: only signals
    # without one (written before configurations were frozen in books) are read, through
    # the index on ``book_strategy_id`` (no scan of the book's signals).
    markets = set(
        Signal.objects.filter(book=book, book_strategy__isnull=True)
        .order_by()
        .values_list("exchange", "symbol", "timeframe")
        .distinct()
    )
    markets.update(
        BookStrategy.objects.filter(book=book)
        .order_by()
        .values_list("exchange", "symbol", "timeframe")
        .distinct()
    )
    return candle_sources_of_markets(markets)


def live_books() -> list[Book]:
    """The books the running system trades in."""
    return list(Book.objects.filter(kind=Book.Kind.LIVE).order_by("name"))


def book_quote_currency(*, book: Book) -> str:
    """The quote currency ``book`` trades in (``USD`` for BTC/USD), or ``quote`` when its
    markets mix several."""
    symbols = BookStrategy.objects.filter(book=book).values_list("symbol", flat=True).distinct()
    currencies = {quote_currency(symbol) for symbol in symbols}
    if not currencies:
        currencies = {
            quote_currency(symbol)
            for symbol in Signal.objects.filter(book=book)
            .order_by()
            .values_list("symbol", flat=True)[:1]
        }
    return currencies.pop() if len(currencies) == 1 else "quote"
