"""``manage.py recommend_thresholds --book NAME``: run the learning engine over one book
(the live books without ``--book``) and store its threshold recommendations. Changes no
guard configuration: a person applies a recommendation from the learning page or the
admin."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.learning import thresholds_recommend
from signals.models import Book


class Command(BaseCommand):
    help = (
        "Replay each numeric guard threshold of a book from its recorded observed values and "
        "store the best supported one as a recommendation (nothing is applied)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--book", help="the book's name (default: every live book)")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["book"]
        if name:
            book = Book.objects.filter(name=name).first()
            if book is None:
                known = ", ".join(Book.objects.order_by("name").values_list("name", flat=True)[:10])
                raise CommandError(f"no book named {name!r}; books: {known or 'none yet'}")
            books = [book]
        else:
            books = list(Book.objects.filter(kind=Book.Kind.LIVE).order_by("name"))
            if not books:
                raise CommandError("no live book yet: name a book with --book")
        totals: dict[str, int] = {}
        for book in books:
            self.stdout.write(f"Book {book.name}: replaying guard thresholds ...")
            outcomes = thresholds_recommend(book=book)
            if not outcomes:
                self.stdout.write("  no active guard with a numeric threshold")
            for outcome in outcomes:
                totals[outcome.action] = totals.get(outcome.action, 0) + 1
                self.stdout.write(f"  {outcome.guard}: {outcome.action}: {outcome.detail}")
        new = totals.get("created", 0) + totals.get("refreshed", 0)
        summary = ", ".join(f"{count} {action}" for action, count in sorted(totals.items()))
        self.stdout.write(
            self.style.SUCCESS(
                f"{new} open recommendation(s) ({summary or 'nothing to do'}); no configuration "
                "was changed: apply one on the learning page or in the admin."
            )
        )
