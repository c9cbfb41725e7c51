"""The signal state machine: allowed moves, the log, protection and races."""

import threading

import pytest
from django.db import connection
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from signals.models import Signal, SignalState, SignalTransition
from signals.services import signal_transition
from signals.tests.factories import SignalFactory

pytestmark = pytest.mark.django_db


def test_each_transition_writes_one_log_row():
    signal = SignalFactory()
    signal_transition(signal=signal, name="approve", actor="tester", payload={"why": "ok"})
    signal_transition(signal=signal, name="execute")
    signal_transition(signal=signal, name="close")
    signal.refresh_from_db()
    assert signal.state == SignalState.CLOSED
    log = list(
        SignalTransition.objects.filter(signal=signal).values_list("name", "from_state", "to_state")
    )
    assert log == [
        ("approve", "generated", "approved"),
        ("execute", "approved", "executed"),
        ("close", "executed", "closed"),
    ]
    assert SignalTransition.objects.filter(signal=signal).first().actor == "tester"


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], "execute"),
        ([], "close"),
        (["block"], "approve"),
        (["reject"], "block"),
        (["approve"], "approve"),
        (["approve", "execute"], "expire"),
        (["approve", "expire"], "execute"),
    ],
)
def test_an_invalid_transition_raises_and_writes_nothing(path, bad):
    signal = SignalFactory()
    for name in path:
        signal_transition(signal=signal, name=name)
    before = SignalTransition.objects.count()
    with pytest.raises(TransitionNotAllowed):
        signal_transition(signal=signal, name=bad)
    assert SignalTransition.objects.count() == before
    assert Signal.objects.get(pk=signal.pk).state == signal.state


def test_assigning_the_state_directly_raises():
    signal = SignalFactory()
    with pytest.raises(AttributeError):
        signal.state = SignalState.CLOSED


def test_a_stale_copy_cannot_overwrite_a_newer_state():
    signal = SignalFactory()
    stale = Signal.objects.get(pk=signal.pk)
    signal_transition(signal=signal, name="approve")
    with pytest.raises(ConcurrentTransition):
        signal_transition(signal=stale, name="block")
    assert Signal.objects.get(pk=signal.pk).state == SignalState.APPROVED
    assert SignalTransition.objects.filter(signal=signal).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_connections_racing_one_transition_end_with_one_winner():
    if connection.vendor != "postgresql":
        pytest.skip("row-level locking race needs PostgreSQL")
    signal = SignalFactory()
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def decide(name: str) -> None:
        # Each thread has its own database connection.
        from django.db import connections

        try:
            mine = Signal.objects.get(pk=signal.pk)
            barrier.wait(timeout=10)
            signal_transition(signal=mine, name=name)
            results[name] = "won"
        except ConcurrentTransition:
            results[name] = "lost"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide, args=(name,)) for name in ("approve", "block")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results.values()) == ["lost", "won"]
    winner = next(name for name, result in results.items() if result == "won")
    final = Signal.objects.get(pk=signal.pk)
    assert final.state == {"approve": SignalState.APPROVED, "block": SignalState.BLOCKED}[winner]
    assert list(SignalTransition.objects.filter(signal=signal).values_list("name", flat=True)) == [
        winner
    ]
