"""One home per guard kind: everything about a kind is on its class, and a kind added by
one module and one registry line is picked up by the admin, the guard page, learning
and the pause alert without another edit."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

import pytest
from django.urls import reverse

from alerts.watchers import pausing_guards
from analytics.learning import guard_curves, threshold_params
from analytics.tests.factories import BookFactory, GuardDecisionFactory, SignalFactory
from shadow.models import ShadowTrade
from signals.admin import GuardConfigForm
from signals.domain.guards import GUARDS, build_guard
from signals.domain.guards.base import Snapshot, Verdict
from signals.domain.strategies import Proposal
from signals.models import BookGuard, GuardConfig, SignalState
from signals.services import book_configure, guard_config_save

ATTRIBUTES = (
    "kind",
    "unit",
    "blocks_when",
    "release",
    "live_only",
    "tunable",
    "tolerance",
    "pauses_trading",
)


@pytest.mark.parametrize("kind", sorted(GUARDS))
def test_every_kind_says_everything_about_itself_on_its_class(kind):
    cls = GUARDS[kind]
    for name in ATTRIBUTES:
        assert hasattr(cls, name), f"{kind} lacks {name}"
    assert cls.kind == kind
    assert cls.blocks_when in (">=", ">", "<")
    if cls.tunable is not None:
        # The swept parameter is one of its own, with a numeric default.
        guard = build_guard(kind, {})
        assert isinstance(getattr(guard, cls.tunable), int | float)


@dataclass(frozen=True, slots=True)
class Throwaway:
    """A guard that blocks when the book holds ``limit`` positions or more."""

    kind: ClassVar[str] = "throwaway"
    unit: ClassVar[str] = "positions"
    blocks_when: ClassVar[str] = ">="
    release: ClassVar[str] = "by itself: positions close"
    live_only: ClassVar[bool] = False
    tunable: ClassVar[str | None] = "limit"
    tolerance: ClassVar[float] = 0.0
    pauses_trading: ClassVar[bool] = True

    limit: int = 3

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("limit must be at least 1")

    def check(self, proposal: Proposal, snapshot: Snapshot) -> Verdict:
        return Verdict(
            guard=self.kind,
            passed=snapshot.open_positions < self.limit,
            reason=f"{snapshot.open_positions} open, limit {self.limit}",
            observed=float(snapshot.open_positions),
            threshold=float(self.limit),
        )


@pytest.fixture
def throwaway(monkeypatch):
    # The one registry line a newcomer writes.
    monkeypatch.setitem(GUARDS, Throwaway.kind, Throwaway)  # type: ignore[index]
    return Throwaway


@pytest.mark.django_db
def test_a_new_kind_is_picked_up_everywhere(throwaway, trader_client):
    # The admin offers it and validates its parameters.
    form = GuardConfigForm(
        data={"name": "tiny", "kind": "throwaway", "params": '{"limit": 0}', "enabled": True}
    )
    assert not form.is_valid() and "limit must be at least 1" in str(form.errors)
    # Learning sweeps its parameter; the pause alert watches it.
    assert threshold_params()["throwaway"] == "limit"
    assert "throwaway" in pausing_guards()

    config = guard_config_save(
        config=GuardConfig(name="tiny", kind="throwaway", params={"limit": 2})
    )
    book = BookFactory(name="with a new guard")
    book_configure(book=book, strategies=[], guards=[config])
    frozen = BookGuard.objects.get(book=book, name="tiny")
    for positions, pnl in [(0, "5"), (1, "-3"), (2, "-8"), (3, "-9"), (1, "4"), (2, "-6")]:
        blocked = positions >= 2
        signal = SignalFactory(
            book=book, state=SignalState.BLOCKED if blocked else SignalState.APPROVED
        )
        GuardDecisionFactory(
            signal=signal,
            guard="tiny",
            book_guard=frozen,
            verdict="block" if blocked else "pass",
            observed_value=Decimal(positions),
            threshold=Decimal(2),
        )
        ShadowTrade.objects.create(
            signal=signal,
            book=book,
            side=signal.side,
            group=ShadowTrade.Group.BLOCKED if blocked else ShadowTrade.Group.CONTROL,
            status=ShadowTrade.Status.CLOSED,
            pnl=Decimal(pnl),
        )

    [curve] = guard_curves(book=book)
    assert curve.book_guard.kind == "throwaway" and curve.param == "limit"
    assert curve.current_point.net_impact == Decimal(23)  # blocked -8, -9, -6
    assert curve.mismatches == 0

    guards = trader_client.get(
        reverse("analytics:api-page", args=["guards"]), {"book": book.pk}
    ).json()["data"]["guards"]
    assert [(g["name"], g["kind"], g["blocked"]) for g in guards] == [("tiny", "throwaway", 3)]
    learning = trader_client.get(
        reverse("analytics:api-page", args=["learning"]), {"book": book.pk}
    ).json()["data"]["guards"]
    assert [g["param"] for g in learning] == ["limit"]
