"""One order per intent, whatever the timing: real processes race the real execution code
on PostgreSQL against a loopback Kraken that keeps every order it receives.

Each racer is a forked process with its own database connection and its own real
``ccxt.kraken`` pointed at ``LoopbackKraken``; in every trial the racers start their
passes (``book_execute`` or ``orders_settle``) at random offsets from each other. After
each trial the desk's own record of what it received is the judge: every client order
id came in exactly once.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from markets.orders import OrderGateway
from markets.services import candles_upsert
from markets.synthetic import synthetic_bars
from markets.tests.loopback_kraken import LoopbackKraken, kraken_over
from shadow.live import book_advance
from signals.execution import book_execute, orders_record_due, orders_settle
from signals.models import Book, ExchangeOrder, Signal, StrategyConfig
from signals.services import book_live, guard_configs_default

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

SEED = 20261207


@dataclass(frozen=True)
class Pass:
    """One pass a racer runs: ``execute`` or ``settle``, ``offset`` seconds after the go."""

    kind: str
    offset: float


def _racer(conn: Connection) -> None:
    """A racer process: runs the passes it is handed, reports what they did."""
    gateways: dict[tuple[str, int, float], OrderGateway] = {}
    while True:
        job = conn.recv()
        if job is None:
            connections.close_all()
            return
        book_id, url, timeout_ms, settle_seconds, kind, start_at, overrides = job
        for name, value in overrides.items():
            setattr(settings, name, value)
        key = (url, timeout_ms, settle_seconds)
        if key not in gateways:
            gateways[key] = OrderGateway(
                kraken_over(url, timeout_ms=timeout_ms),
                settle_seconds=settle_seconds,
                backoff_seconds=0,
                read_attempts=1,
            )
        time.sleep(max(0.0, start_at - time.time()))
        try:
            if kind == "execute":
                report = book_execute(book_id=book_id, gateway=gateways[key], now=timezone.now())
            else:
                report = orders_settle(gateway=gateways[key], now=timezone.now())
            conn.send(("ok", report.as_dict()))
        except Exception:
            conn.send(("error", traceback.format_exc()))


class Racers:
    """``count`` forked racer processes; ``run`` hands them one pass each and waits."""

    def __init__(self, count: int) -> None:
        # A forked child must not share the parent's database connection.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=_racer, args=(child,), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def run(
        self,
        passes: list[Pass],
        *,
        book_id: int,
        url: str,
        timeout_ms: int = 5_000,
        settle_seconds: float = 0.0,
        overrides: dict[str, Any] | None = None,
    ) -> list[tuple[str, Any]]:
        start = time.time() + 0.05
        for pipe, one in zip(self.pipes, passes, strict=False):
            pipe.send(
                (
                    book_id,
                    url,
                    timeout_ms,
                    settle_seconds,
                    one.kind,
                    start + one.offset,
                    overrides or {},
                )
            )
        return [pipe.recv() for pipe in self.pipes[: len(passes)]]

    def stop(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


@pytest.fixture
def desk() -> Iterator[LoopbackKraken]:
    server = LoopbackKraken().start()
    yield server
    server.stop()


@pytest.fixture
def book(settings) -> Book:
    """A live Kraken book whose live-flagged strategy has a few signals due now."""
    settings.SIGNAL_MAX_AGE = timedelta(days=6)
    now = timezone.now()
    bars = synthetic_bars(timeframe=timedelta(hours=1), count=600, end=now, seed=21)
    candles_upsert(
        exchange="kraken", symbol="BTC/USDT", timeframe="1h", bars=bars, source="synthetic"
    )
    StrategyConfig.objects.create(
        name="ema live",
        kind="ema_crossover",
        exchange="kraken",
        symbol="BTC/USDT",
        timeframe="1h",
        live=True,
    )
    guard_configs_default()
    live = book_live()
    book_advance(book_id=live.pk, now=now)
    due = Signal.objects.filter(
        book=live,
        state__in=["approved", "executed", "closed"],
        decided_at__gte=now - settings.SIGNAL_MAX_AGE,
    )
    assert due.count() >= 2
    return live


@pytest.fixture
def racers() -> Iterator[Racers]:
    pool = Racers(3)
    yield pool
    pool.stop()


def _fresh(book: Book, desk: LoopbackKraken, **desk_options: float) -> None:
    ExchangeOrder.objects.filter(book=book).delete()
    desk.reset(**desk_options)


def _no_errors(results: list[tuple[str, Any]]) -> None:
    errors = [detail for outcome, detail in results if outcome != "ok"]
    assert not errors, errors[0]


@dataclass
class Tally:
    """What the trials of one test did, counted in orders (the desk's record is the
    judge): sends beyond the first of an order are duplicated; an order recorded but
    never taken, or not recorded filled at the end, is lost."""

    trials: int = 0
    orders: int = 0
    duplicated: int = 0
    lost: int = 0
    wrong: list[tuple[int, str, dict[str, int], int]] = field(default_factory=list)

    def count(self, book: Book, desk: LoopbackKraken, trial: int, about: str = "") -> None:
        rows = dict(
            ExchangeOrder.objects.filter(book=book).values_list("client_order_id", "status")
        )
        sends = desk.sends()
        twice = {cid: n for cid, n in sends.items() if n > 1}
        lost = sum(1 for cid, status in rows.items() if not sends[cid] or status != "closed")
        self.trials += 1
        self.orders += len(rows)
        self.duplicated += sum(n - 1 for n in twice.values())
        self.lost += lost
        if twice or lost:
            self.wrong.append((trial, about, twice, lost))

    def record(self, reliability: Any) -> None:
        """Record what was observed for docs/reliability.md, then fail on any trial that
        sent an order twice or lost one."""
        reliability.observed(
            f"{self.duplicated} orders sent twice and {self.lost} lost, of {self.orders} "
            f"orders in {self.trials} trials",
            lost=self.lost,
            duplicated=self.duplicated,
            trials=self.trials,
        )
        assert not self.wrong, f"{len(self.wrong)} of {self.trials} trials: {self.wrong}"


@pytest.mark.reliability(
    fault="two execute passes of one live book at once (the second 0-0.15 s later)",
    expected="every order sent exactly once and recorded filled",
)
def test_two_execute_passes_at_random_offsets_send_each_order_once(book, desk, racers, reliability):
    rng = random.Random(SEED)
    tally = Tally()
    for trial in range(120):
        _fresh(book, desk)
        lag = rng.uniform(0.0, 0.15)
        results = racers.run(
            [Pass("execute", 0.0), Pass("execute", lag)], book_id=book.pk, url=desk.url
        )
        _no_errors(results)
        tally.count(book, desk, trial, f"lag {lag:.3f} s")
    tally.record(reliability)


@pytest.mark.reliability(
    fault="two settle passes and an execute pass meeting orders a dead worker left "
    "unsent or mid-send (some taken by the exchange)",
    expected="an order the exchange took is found, not sent; one it never got is sent "
    "by exactly one pass",
)
def test_settle_and_execute_passes_meeting_orders_a_dead_worker_left_send_each_once(
    book, desk, racers, reliability
):
    """A worker recorded the orders due and died: before sending any (``new``), or after
    claiming them (``sending``, its window passed), with or without the exchange having
    taken them. Two settle passes and an execute pass meet them at random offsets."""
    rng = random.Random(SEED + 1)
    tally = Tally()
    for trial in range(90):
        _fresh(book, desk)
        recorded = orders_record_due(book=book, exchange="kraken", now=timezone.now())
        assert recorded
        for order in recorded:
            if rng.random() < 0.5:
                continue  # died before sending it
            ExchangeOrder.objects.filter(pk=order.pk).update(
                status="sending", sends=1, visible_by=timezone.now() - timedelta(seconds=1)
            )
            if rng.random() < 0.5:
                desk.preload(order.client_order_id, side=order.side, volume=str(order.amount))
        passes = [Pass("settle", 0.0), Pass("settle", rng.uniform(0, 0.15))]
        passes.append(Pass("execute", rng.uniform(0, 0.15)))
        results = racers.run(passes, book_id=book.pk, url=desk.url)
        _no_errors(results)
        tally.count(book, desk, trial)
    tally.record(reliability)


# Client timeout, the exchange's real lag, what the setting allows for it.
TIMEOUT_MS = 200
VISIBILITY_SETTING = {"ORDER_VISIBILITY_SECONDS": {"kraken": 1.5}}


def _slow_trial(
    racers: Racers,
    book: Book,
    desk: LoopbackKraken,
    rng: random.Random,
    *,
    settle_seconds: float = 0.1,
    settle_within: float = 3.0,
    overrides: dict[str, Any] = VISIBILITY_SETTING,
) -> None:
    """An execute pass, two settle passes at random moments over the windows, then a last
    settle pass once every window has passed."""
    passes = [Pass("execute", 0.0)]
    passes += [Pass("settle", rng.uniform(0.0, settle_within)) for _ in range(2)]
    options: dict[str, Any] = {
        "book_id": book.pk,
        "url": desk.url,
        "timeout_ms": TIMEOUT_MS,
        "settle_seconds": settle_seconds,
        "overrides": overrides,
    }
    _no_errors(racers.run(passes, **options))
    last = ExchangeOrder.objects.filter(book=book).order_by("-visible_by").first()
    assert last is not None and last.visible_by is not None
    time.sleep(max(0.0, (last.visible_by - timezone.now()).total_seconds()) + 0.05)
    _no_errors(racers.run([Pass("settle", 0.0)], **options))


@pytest.mark.reliability(
    fault="a send that timed out although the exchange took it, listed 0.1-0.6 s later",
    expected="never sent again; recorded filled once listed",
)
def test_a_send_that_timed_out_is_not_sent_again_before_the_exchange_lists_it(
    book, desk, racers, reliability
):
    """The desk takes each order but answers after the client gave up, and lists it only
    0.1 to 0.6 s later (the setting allows 1.5 s: a margin for a loaded machine). Nothing
    is sent a second time, and every order ends up recorded as filled."""
    rng = random.Random(SEED + 2)
    tally = Tally()
    for trial in range(6):
        _fresh(book, desk, visibility=rng.uniform(0.1, 0.6), reply_delay=0.4)
        _slow_trial(racers, book, desk, rng)
        tally.count(book, desk, trial)
    tally.record(reliability)


@pytest.mark.reliability(
    fault="the measured case: a send that timed out, listed 2 s after the exchange took "
    "it, looked up after the default 1 s pause",
    expected="never sent again; recorded filled once listed",
)
def test_the_measured_case_listed_two_seconds_later_is_found_not_sent_again(
    book, desk, racers, reliability
):
    """The case measured on the code before: the exchange took the order, the answer
    came after the client's timeout, and the order showed in the closed orders only 2 s
    later, while ``place`` looked after its default 1 s pause (and sent it again). With
    the exchange's 2 s lag configured (2.5 s), nothing is sent twice."""
    rng = random.Random(SEED + 4)
    tally = Tally()
    _fresh(book, desk, visibility=2.0, reply_delay=0.4)
    _slow_trial(
        racers,
        book,
        desk,
        rng,
        settle_seconds=1.0,
        settle_within=6.0,
        overrides={"ORDER_VISIBILITY_SECONDS": {"kraken": 2.5}},
    )
    tally.count(book, desk, 0)
    tally.record(reliability)


@pytest.mark.reliability(
    fault="a send lost on the way (the request hangs past the client's timeout)",
    expected="sent again by exactly one pass once a lookup after its window proves it "
    "absent; recorded filled",
)
def test_a_send_lost_on_the_way_is_sent_again_once_after_its_window(
    book, desk, racers, reliability
):
    """The first send of each order never reaches the desk (the request hangs past the
    client's timeout): after the window a lookup proves it absent and exactly one pass
    sends it again."""
    rng = random.Random(SEED + 3)
    tally = Tally()
    for trial in range(4):
        _fresh(book, desk, visibility=rng.uniform(0.1, 0.6), lose_first=True)
        _slow_trial(racers, book, desk, rng)
        tally.count(book, desk, trial)
        rows = ExchangeOrder.objects.filter(book=book)
        assert set(rows.values_list("sends", flat=True)) == {2}, "each sent exactly twice"
        assert sorted(desk.lost) == sorted(desk.sends())
    tally.record(reliability)
