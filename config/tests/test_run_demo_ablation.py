"""``make run`` configures no broker: an ablation started from the guard page runs its
legs in a background thread of the web process, and sends no message to any broker."""

import threading
import time
from io import StringIO

import pytest
import redis
from django.core.management import call_command
from django.db import transaction

from shadow.ablation import ablation_start
from signals.models import Book
from signals.tests.candles import MARKET, store_walk

MARKET_ARGS = [
    "--exchange",
    MARKET["exchange"],
    "--symbol",
    MARKET["symbol"],
    "--timeframe",
    MARKET["timeframe"],
]


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_legs_run_in_a_thread_of_this_process(settings):
    settings.TASKS_IN_WEB_PROCESS = True
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    store_walk(600, seed=8)
    call_command("replay", *MARKET_ARGS, "--book", "base", "--no-progress", stdout=StringIO())
    book = Book.objects.get(name="base")

    with transaction.atomic():
        guards = ablation_start(book=book)
        # Nothing runs before the request's transaction commits.
        assert not any(t.name == f"ablation-{book.pk}" for t in threading.enumerate())
    # Then the legs run in a thread of this process: the request does not wait for them.
    assert any(t.name == f"ablation-{book.pk}" for t in threading.enumerate())

    deadline = time.monotonic() + 120
    while Book.objects.filter(ablation_of=book).count() < len(guards):
        assert time.monotonic() < deadline, "the legs were not written"
        time.sleep(0.2)
    legs = set(Book.objects.filter(ablation_of=book).values_list("without_guard", flat=True))
    assert legs == set(guards) == {"cooldown_after_stop", "max_open_positions"}
    # No message went to a broker.
    assert broker.keys("*") == []


@pytest.mark.django_db
def test_without_a_broker_the_ablate_command_the_page_suggests_runs_here(settings):
    settings.TASKS_IN_WEB_PROCESS = True
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    store_walk(600, seed=8)
    call_command("replay", *MARKET_ARGS, "--book", "base", "--no-progress", stdout=StringIO())
    out = StringIO()
    call_command("ablate", "--book", "base", "--no-progress", "--timeout", "5", stdout=out)
    assert "Ablation done" in out.getvalue()
    assert Book.objects.filter(ablation_of__name="base").count() == 2
    assert broker.keys("*") == []
