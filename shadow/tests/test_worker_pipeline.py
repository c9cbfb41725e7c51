"""The periodic tasks, run by a real Celery worker process against the real Redis broker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from shadow.models import ShadowTrade
from signals.models import Book, GuardDecision, PaperTrade, Signal, StrategyConfig
from signals.services import guard_configs_default
from signals.tests.candles import MARKET, store_walk

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_runs_the_periodic_tasks_into_the_live_book(celery_worker_process, wait_for):
    worker = celery_worker_process
    send = worker.send
    # Hourly candles whose last one closed before now, as the market-data task leaves them.
    last_closed = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    store_walk(500, seed=11, start=last_closed - timedelta(hours=499))
    StrategyConfig.objects.create(name="live ema", kind="ema_crossover", **MARKET)
    guard_configs_default()

    send("signals.generate_signals")
    wait_for(lambda: Book.objects.filter(name="live").exists(), what="the live book")
    book = Book.objects.get(name="live")
    wait_for(
        lambda: (
            Signal.objects.filter(book=book, state="blocked").exists()
            and PaperTrade.objects.filter(book=book, status="closed").exists()
        ),
        what="signals, blocks and closed paper trades",
    )
    # Wait for the whole history to be processed (the cursor reaches the last candle).
    wait_for(
        lambda: _cursor_done(book, last_closed),
        what="the generation cursor to reach the last closed candle",
    )

    send("shadow.evaluate_shadow_outcomes")
    blocked = Signal.objects.filter(book=book, state="blocked")
    wait_for(
        lambda: ShadowTrade.objects.filter(book=book, group="blocked").count() == blocked.count(),
        what="a shadow trade for every blocked signal",
    )
    wait_for(
        lambda: ShadowTrade.objects.filter(book=book, status="closed").exists(),
        what="shadow outcomes",
    )
    decided = Signal.objects.filter(book=book).exclude(state="rejected")
    assert GuardDecision.objects.filter(signal__in=decided).count() == 2 * decided.count()

    # Running the periodic tasks again adds nothing: generation and outcomes are idempotent.
    before = (Signal.objects.count(), GuardDecision.objects.count(), ShadowTrade.objects.count())
    closed_pnl = sorted(ShadowTrade.objects.filter(status="closed").values_list("signal_id", "pnl"))
    done = worker.finished()
    for name in (
        "signals.generate_signals",
        "shadow.evaluate_shadow_outcomes",
        "analytics.monitor_pipeline",
    ):
        send(name)
    wait_for(lambda: worker.finished() >= done + 3, what="the second round of tasks")
    assert "raised unexpected" not in worker.log.read_text()
    assert (
        Signal.objects.count(),
        GuardDecision.objects.count(),
        ShadowTrade.objects.count(),
    ) == before
    still = dict(ShadowTrade.objects.filter(status="closed").values_list("signal_id", "pnl"))
    assert all(still[signal_id] == pnl for signal_id, pnl in closed_pnl)


def _cursor_done(book, last_closed):
    from signals.models import GenerationCursor

    return GenerationCursor.objects.filter(book=book, last_candle_time=last_closed).exists()
