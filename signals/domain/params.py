"""Validation of the JSON parameters of a strategy or guard against its dataclass fields."""

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any


def checked_params(cls: type, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` checked against the fields of dataclass ``cls``: known names, right types.

    Raises ``ValueError`` naming the first problem. Integers are accepted for float fields.
    """
    if not isinstance(params, Mapping):
        raise ValueError("parameters must be a JSON object")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
    checked: dict[str, Any] = {}
    for name, value in params.items():
        expected = type(known[name].default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            raise ValueError(f"parameter {name} must be {expected.__name__}, not {value!r}")
        checked[name] = value
    return checked


def default_params(cls: type) -> dict[str, Any]:
    """The parameters dataclass ``cls`` runs with when none are given."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}
