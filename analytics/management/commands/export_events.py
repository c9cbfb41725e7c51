"""``manage.py export_events --book NAME [--follow] [--since-id N]``: a book's transition
log as JSON Lines on stdout, one object per state change in id order (the original
system's ``signal_bus.jsonl``); ``--follow`` keeps printing new ones like ``tail -f``."""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import sys
import time
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from signals.models import Book, SignalTransition

COLUMNS = (
    "id",
    "created_at",
    "simulated_at",
    "signal_id",
    "signal__exchange",
    "signal__symbol",
    "signal__timeframe",
    "signal__side",
    "name",
    "from_state",
    "to_state",
    "actor",
    "payload",
)


def transition_batches(*, book: Book, after_id: int, batch_size: int) -> Iterator[list[tuple]]:
    """The transitions of ``book`` with an id above ``after_id``, in id order, one query
    per batch of ``batch_size`` (keyset pagination: memory stays bounded whatever the
    length of the log)."""
    rows = SignalTransition.objects.filter(signal__book=book).order_by("id")
    while True:
        batch = list(rows.filter(id__gt=after_id).values_list(*COLUMNS)[:batch_size])
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        after_id = batch[-1][0]


def event_line(row: tuple, book_name: str) -> str:
    """One transition as a JSON object on one line."""
    (
        transition_id,
        created_at,
        simulated_at,
        signal_id,
        exchange,
        symbol,
        timeframe,
        side,
        name,
        from_state,
        to_state,
        actor,
        payload,
    ) = row
    event = {
        "id": transition_id,
        "time": created_at.isoformat(),
        "market_time": simulated_at.isoformat() if simulated_at is not None else None,
        "signal": signal_id,
        "book": book_name,
        "market": {"exchange": exchange, "symbol": symbol, "timeframe": timeframe},
        "side": side,
        "event": name,
        "from": from_state,
        "to": to_state,
        "actor": actor,
        "payload": payload,
    }
    return json.dumps(event, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def reader_gone(stream: Any) -> bool:
    """Whether ``stream`` is a pipe whose reader has closed it. An idle follower writes
    nothing, so it would otherwise never learn that ``| head`` is done (GNU ``tail -f``
    asks the same way)."""
    try:
        descriptor = stream.fileno()
        if not stat.S_ISFIFO(os.fstat(descriptor).st_mode):
            return False
    except (AttributeError, OSError, ValueError):
        return False  # not a real file (a test's StringIO)
    poller = select.poll()
    poller.register(descriptor, select.POLLERR | select.POLLHUP)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


class Command(BaseCommand):
    help = (
        "Print a book's signal transitions (the signal bus) as JSON Lines, in id order; "
        "--follow keeps printing new ones until interrupted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--book", required=True, help="the book's name")
        parser.add_argument(
            "--since-id",
            type=int,
            default=0,
            help="print only transitions with an id above N (resume after the last one seen)",
        )
        parser.add_argument(
            "--follow", action="store_true", help="keep polling for new transitions (Ctrl-C stops)"
        )
        parser.add_argument(
            "--interval", type=float, default=2.0, help="seconds between polls with --follow"
        )
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="transitions read per query"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        book = Book.objects.filter(name=options["book"]).first()
        if book is None:
            known = ", ".join(Book.objects.order_by("name").values_list("name", flat=True)[:10])
            raise CommandError(f"no book named {options['book']!r}; books: {known or 'none'}")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        if options["interval"] <= 0:
            raise CommandError("--interval must be above 0 seconds")
        if options["since_id"] < 0:
            raise CommandError("--since-id must be 0 or more")
        try:
            self._export(book, options)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how --follow ends.
        except BrokenPipeError:
            # The reader went away (``| head``): stop quietly, and point stdout at
            # /dev/null so the interpreter's final flush does not complain either.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())

    def _export(self, book: Book, options: dict[str, Any]) -> None:
        # Ctrl-C (or SIGTERM) asks the loop to stop at its next step, wherever it is:
        # never in the middle of a query or a line.
        stop: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda number, frame: stop.append(number))
        last_id = options["since_id"]
        while not stop:
            last_id = self.export_new(book, after_id=last_id, batch_size=options["batch_size"])
            if not options["follow"]:
                return
            if reader_gone(self.stdout):
                raise BrokenPipeError
            deadline = time.monotonic() + options["interval"]
            while not stop and time.monotonic() < deadline:
                time.sleep(min(0.1, options["interval"]))

    def export_new(self, book: Book, *, after_id: int, batch_size: int) -> int:
        """Print the transitions after ``after_id``; return the last id printed."""
        for batch in transition_batches(book=book, after_id=after_id, batch_size=batch_size):
            self.stdout.write(
                "".join(event_line(row, book.name) + "\n" for row in batch), ending=""
            )
            self.stdout.flush()
            after_id = batch[-1][0]
        return after_id
