"""The registry of a family of kinds (strategies, guards): each class by its ``kind`` name,
built from JSON parameters checked against its dataclass fields.

``STRATEGIES`` and ``GUARDS`` are both a ``Registry``; adding a kind is a new module and
one line in its family's list. Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from signals.domain.params import checked_params


class Kind(Protocol):
    """Anything a registry holds: a dataclass with a ``kind`` name."""

    kind: ClassVar[str]


K = TypeVar("K", bound=Kind)


class Registry(dict[str, type[K]]):
    """``family``'s classes by their ``kind``, in the order given.

    A plain dict (the admin, docs and tests read it as one, and a test may add a
    throwaway kind with ``monkeypatch.setitem``) with ``build``, which refuses an unknown
    kind or a bad parameter with a ``ValueError`` that says what is wrong.
    """

    def __init__(self, family: str, classes: Iterable[type[K]]) -> None:
        super().__init__()
        self.family = family
        for cls in classes:
            if cls.kind in self:
                raise ValueError(f"two {family} classes have kind {cls.kind!r}")
            self[cls.kind] = cls

    def build(self, kind: str, params: Mapping[str, Any]) -> K:
        """The ``kind`` built with ``params``; ``ValueError`` naming what is wrong otherwise."""
        try:
            cls = self[kind]
        except KeyError:
            raise ValueError(
                f"unknown {self.family} kind {kind!r}; known: {', '.join(sorted(self))}"
            ) from None
        return cls(**checked_params(cls, params))

    def validate(self, kind: str, params: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` if ``kind`` and ``params`` do not build."""
        self.build(kind, params)
