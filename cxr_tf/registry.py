"""One registry per kind of thing (datasets, models, losses, schedules, ...).

A registry maps a name used in CLI flags and recipes to the callable that builds the thing, in
the manner of TF Model Garden's ``official/core/registry.py``. A miss lists the valid names and
the closest one (MONAI's ``look_up_option`` does the same).
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from cxr_tf.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping with a ``register`` decorator and a helpful ``get``.

    Args:
        kind: what the registry holds, used in error messages (``"dataset"``, ``"model"``).

    Examples:
        >>> losses = Registry("loss")
        >>> @losses.register("bce")
        ... def bce(): ...
        >>> losses.get("bce") is bce
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding ``obj`` under ``name``; a duplicate name raises ``ValueError``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """The object registered as ``name``; raises ``UserError`` naming the valid choices."""
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(
                f"unknown {self.kind} {name!r}{hint}; valid: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
