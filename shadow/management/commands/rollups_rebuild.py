"""``manage.py rollups_rebuild [--book ID ...]``: sum every book's rollups again from its
rows (``shadow.rollups``), one transaction per book, with a line per book and per stage
of it (the facts, the month rows, each extension), each with the time the one before it
took."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shadow import rollups
from shadow.models import BookRollup
from signals.models import Book


class Command(BaseCommand):
    help = "Recompute the pages' rollups of every book (or of --book) from the book's rows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--book",
            type=int,
            action="append",
            dest="books",
            metavar="ID",
            help="A book's id (repeat for several); default: every book.",
        )

    def handle(self, *args: Any, books: list[int] | None = None, **options: Any) -> None:
        chosen = Book.objects.order_by("id")
        if books:
            chosen = chosen.filter(pk__in=books)
            missing = sorted(set(books) - set(chosen.values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"no book with id {', '.join(map(str, missing))}")
        total = chosen.count()
        for index, book in enumerate(chosen.iterator(), start=1):
            # A large book takes minutes (about 90 s at 1,000,000 signals): say which first.
            self.stdout.write(
                f"[{index}/{total}] book {book.pk} {book.name!r}: summing its rows..."
            )
            self.stdout.flush()
            started = time.perf_counter()
            rollups.rebuild(book.pk, on_stage=self._stages(f"[{index}/{total}] book {book.pk}"))
            rows = BookRollup.objects.filter(book=book).count()
            self.stdout.write(
                f"[{index}/{total}] book {book.pk} {book.name!r}: {rows:,} rollup rows "
                f"in {time.perf_counter() - started:.1f} s"
            )
        if not total:
            self.stdout.write("No book to rebuild.")

    def _stages(self, prefix: str) -> Callable[[str], None]:
        """``on_stage`` for ``rollups.rebuild``: a line as each stage starts, saying how
        long the previous one took."""
        previous: list[tuple[str, float]] = []

        def stage(name: str) -> None:
            now = time.perf_counter()
            took = f" ({previous[-1][0]} took {now - previous[-1][1]:.1f} s)" if previous else ""
            what = "committing" if name == "done" else f"summing {name}"
            self.stdout.write(f"{prefix}:   {what}...{took}")
            self.stdout.flush()
            previous.append((name, now))

        return stage
