"""``manage.py ablate --book NAME``: each guard's path-dependent value beside its
first-order net impact, from one replay per guard with that guard removed."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from analytics.selectors import ablation_report
from config.celery import app
from shadow.ablation import ablation_guards, ablation_leg_run
from signals.models import Book


class Command(BaseCommand):
    help = (
        "Replay a replay book's period once per guard with that guard removed (one "
        "Celery task each, in parallel), then report each guard's path-dependent P&L "
        "difference beside its first-order net impact."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--book", required=True, help="the replay book to ablate")
        parser.add_argument(
            "--inline",
            action="store_true",
            help="run the legs here one after the other instead of on the Celery workers",
        )
        parser.add_argument(
            "--timeout", type=int, default=3600, help="seconds to wait for the workers"
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        book = Book.objects.filter(name=options["book"]).first()
        if book is None:
            known = ", ".join(Book.objects.order_by("name").values_list("name", flat=True)[:10])
            raise CommandError(f"no book named {options['book']!r}; books: {known or 'none'}")
        if book.kind != Book.Kind.REPLAY or book.ablation_of_id is not None:
            raise CommandError(
                f"{book.name!r} is not a replay book of its own: ablate a replay, not the live "
                "book or another ablation's leg"
            )
        guards = ablation_guards(book=book)
        if not guards:
            raise CommandError(f"{book.name!r} ran no guard: there is nothing to remove")
        self.stdout.write(
            f"Ablating {book.name!r}: {len(guards)} leg(s), one per guard: {', '.join(guards)}"
        )
        started = time.monotonic()
        with tqdm(
            total=len(guards),
            unit="leg",
            desc="ablation",
            file=sys.stderr,
            disable=options["no_progress"],
        ) as bar:
            # No broker configured (make run): no worker to send to, so here.
            if options["inline"] or settings.TASKS_IN_WEB_PROCESS:
                for guard in guards:
                    ablation_leg_run(book_id=book.pk, guard=guard)
                    bar.update()
            else:
                self._on_workers(book, guards, bar, options["timeout"])
        self.stdout.write(f"Ablation done in {time.monotonic() - started:.1f} s.")
        self.stdout.write(
            "Positive = the guard saved money. First order: minus the shadow P&L of what it "
            "blocked. Path-dependent: this book's paper P&L minus that of the same history "
            "without the guard."
        )
        self.stdout.write(f"  {'guard':<28} {'first order':>14} {'path-dependent':>16}")
        for row in ablation_report(book=book):
            first = f"{row.first_order:.2f}" if row.first_order is not None else "-"
            path = f"{row.path_dependent:.2f}" if row.path_dependent is not None else "-"
            self.stdout.write(f"  {row.guard:<28} {first:>14} {path:>16}")

    def _on_workers(self, book: Book, guards: list[str], bar: tqdm, timeout: int) -> None:
        sent_at = timezone.now()
        for guard in guards:
            app.send_task("shadow.ablation_leg", kwargs={"book_id": book.pk, "guard": guard})
        started = time.monotonic()
        done: set[str] = set()
        # Each leg's book appears, whole, when its task commits; no result backend needed.
        while len(done) < len(guards):
            if time.monotonic() - started > timeout:
                missing = ", ".join(g for g in guards if g not in done)
                raise CommandError(
                    f"the workers did not finish in {timeout} s (legs missing: {missing}); "
                    "is a worker running on the shadow queue? Or use --inline"
                )
            finished = set(
                Book.objects.filter(ablation_of=book, created_at__gte=sent_at).values_list(
                    "without_guard", flat=True
                )
            )
            bar.update(len(finished - done))
            done |= finished
            time.sleep(0.5)
