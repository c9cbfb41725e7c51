"""The one registry mechanism behind ``build_strategy`` and ``build_guard`` (no database)."""

from dataclasses import dataclass
from typing import ClassVar

import pytest

from signals.domain.guards import GUARDS, build_guard
from signals.domain.registry import Registry
from signals.domain.strategies import STRATEGIES, build_strategy


@dataclass(frozen=True, slots=True)
class Small:
    kind: ClassVar[str] = "small"
    size: int = 1


@dataclass(frozen=True, slots=True)
class Large:
    kind: ClassVar[str] = "large"
    size: float = 10.0


def test_strategies_and_guards_are_one_mechanism():
    assert type(STRATEGIES) is Registry
    assert type(GUARDS) is Registry
    assert (STRATEGIES.family, GUARDS.family) == ("strategy", "guard")


def test_a_kind_is_built_by_its_name_with_its_parameters_checked():
    registry = Registry("widget", [Small, Large])
    assert list(registry) == ["small", "large"]
    assert registry.build("small", {}) == Small()
    assert registry.build("large", {"size": 3}) == Large(size=3.0)
    with pytest.raises(ValueError, match="parameter size must be int, not '2'"):
        registry.build("small", {"size": "2"})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) colour; known: size"):
        registry.validate("small", {"colour": "red"})


def test_an_unknown_kind_is_refused_naming_its_family_and_the_known_kinds():
    registry = Registry("widget", [Small, Large])
    with pytest.raises(ValueError, match=r"^unknown widget kind 'medium'; known: large, small$"):
        registry.build("medium", {})
    with pytest.raises(ValueError, match="unknown guard kind 'nope'; known: cooldown_after"):
        build_guard("nope", {})
    with pytest.raises(ValueError, match="unknown strategy kind 'nope'; known: bollinger"):
        build_strategy("nope", {})


def test_two_classes_with_one_kind_are_refused():
    @dataclass(frozen=True, slots=True)
    class AlsoSmall:
        kind: ClassVar[str] = "small"

    with pytest.raises(ValueError, match="two widget classes have kind 'small'"):
        Registry("widget", [Small, AlsoSmall])


def test_a_kind_added_for_a_test_is_built_and_then_gone(monkeypatch):
    registry = Registry("widget", [Small])
    monkeypatch.setitem(registry, "large", Large)
    assert registry.build("large", {}) == Large()
    monkeypatch.undo()
    with pytest.raises(ValueError, match="unknown widget kind 'large'"):
        registry.build("large", {})
