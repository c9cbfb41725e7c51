"""``manage.py report --book NAME --period 7d --format html|json|csv [--output PATH]``:
a book's report over a period, on stdout or into a file, stored as a ``Report``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.filters import PERIODS, BadFilterError
from analytics.reports import FORMATS, render, report_data, report_store
from signals.models import Book


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory renamed
    over it, so a failure never leaves a half-written report behind."""
    directory = path.parent if str(path.parent) else Path(".")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = (
        "Write a book's report over a period (headline figures, each guard, each strategy) "
        "as HTML, JSON or CSV, on stdout or into --output, and store it (unless --no-store)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--book", required=True, help="the book's name")
        parser.add_argument(
            "--period",
            default="7d",
            help=f"one of {', '.join(PERIODS)}, ending at the book's clock (default 7d)",
        )
        parser.add_argument("--format", default="html", help="html, json or csv (default html)")
        parser.add_argument("--output", help="a file to write instead of stdout")
        parser.add_argument(
            "--no-store", action="store_true", help="do not keep the report in the database"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fmt = options["format"]
        if fmt not in FORMATS:
            raise CommandError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
        period = options["period"]
        if period not in PERIODS:
            raise CommandError(f"--period {period!r} is not one of {', '.join(PERIODS)}")
        book = Book.objects.filter(name=options["book"]).first()
        if book is None:
            known = ", ".join(Book.objects.order_by("name").values_list("name", flat=True)[:10])
            raise CommandError(f"no book named {options['book']!r}; books: {known or 'none'}")
        try:
            data = report_data(book=book, period=period)
        except BadFilterError as error:
            raise CommandError(str(error)) from None
        text = render(data, fmt)
        output = options["output"]
        if output:
            path = Path(output)
            try:
                write_atomically(path, text)
            except OSError as error:
                raise CommandError(
                    f"cannot write the report to {output}: {error.strerror or error}"
                ) from None
        else:
            self.stdout.write(text, ending="")
        if not options["no_store"]:
            report = report_store(book=book, period=period, created_by="command", data=data)
            done = f"Stored as report #{report.pk}"
            if output:
                done = f"Wrote {output}. {done}"
            self.stderr.write(f"{done} ({book.name}, {data['period_label']}).")
        elif output:
            self.stderr.write(f"Wrote {output}.")
