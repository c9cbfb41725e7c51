"""The live pipeline, run by a real Celery worker process against the real Redis broker."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from markets.services import candles_upsert
from markets.synthetic import synthetic_bars
from shadow.tests.book_rows import book_rows
from signals.models import Book, BookState, StrategyConfig
from signals.services import guard_configs_default

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SYMBOLS = ("AAA/USD", "BBB/USD", "CCC/USD")


def test_a_live_catch_up_through_the_worker_writes_what_a_replay_writes(
    celery_worker_process, wait_for
):
    worker = celery_worker_process
    # Hourly candles of three markets whose last one closed before now, as the
    # market-data task leaves them.
    now = timezone.now()
    for seed, symbol in enumerate(SYMBOLS, start=1):
        bars = synthetic_bars(timeframe=timedelta(hours=1), count=500, end=now, seed=seed)
        candles_upsert(exchange="gen", symbol=symbol, timeframe="1h", bars=bars, source="synthetic")
        StrategyConfig.objects.create(
            name=f"ema {symbol}",
            kind="ema_crossover",
            exchange="gen",
            symbol=symbol,
            timeframe="1h",
        )
    guard_configs_default()

    worker.send("shadow.advance_live_books")
    wait_for(lambda: Book.objects.filter(name="live").exists(), what="the live book")
    live = Book.objects.get(name="live")
    wait_for(
        lambda: BookState.objects.filter(book=live, revision__gte=1).exists(),
        what="the live book's first run",
    )
    call_command(
        "replay",
        "--exchange",
        "gen",
        "--all-symbols",
        "--timeframe",
        "1h",
        "--book",
        "reference",
        "--no-progress",
        stdout=StringIO(),
    )
    expected = book_rows(Book.objects.get(name="reference"))
    assert len(expected["signals"]) > 30
    assert book_rows(live) == expected

    # Running the periodic tasks again adds nothing: no candle closed since.
    done = worker.finished()
    worker.send("shadow.advance_live_books")
    worker.send("analytics.monitor_pipeline")
    wait_for(lambda: worker.finished() >= done + 3, what="the second round of tasks")
    assert "raised unexpected" not in worker.log.read_text()
    assert book_rows(live) == expected
