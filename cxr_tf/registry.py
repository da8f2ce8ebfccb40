"""Choice sets: what a flag or recipe key may name, defined once and checked one way.

A ``Registry`` maps a name used in CLI flags and recipes to the callable that builds the thing (models,
losses, datasets...), in the manner of TF Model Garden's ``official/core/registry.py``. A ``Choices`` is a
fixed set of names for a concept that builds nothing (label policies, resize modes, encodings...).
``lazy`` names a set defined in a module that is costly to import (TensorFlow) without importing it.
Config fields take any of them (``config.option(..., choices=SET)``); argparse's choices and help text
derive from them. A miss is one line listing the valid names and the closest one (MONAI's
``look_up_option`` does the same).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, Generic, Iterator, Protocol, Sequence, TypeVar

from cxr_tf.errors import UserError

T = TypeVar("T")


class ChoiceSet(Protocol):
    """What config fields and argparse need of a set of names: ``Registry``, ``Choices`` or ``lazy``."""

    kind: str

    def names(self) -> list[Any]: ...

    def check(self, value: Any, where: str = "") -> Any: ...


def check_name(kind: str, value: Any, valid: Sequence[Any], where: str = "") -> Any:
    """``value`` if it is in ``valid``, else ``UserError``: ``[where: ]unknown KIND 'x' (did you mean 'y'?);
    valid: a, b``. ``where`` names the flag or recipe key at fault (``"--uncertainty"``)."""
    if value in valid:
        return value
    names = [str(v) for v in valid]
    close = difflib.get_close_matches(str(value), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    prefix = f"{where}: " if where else ""
    raise UserError(f"{prefix}unknown {kind} {value!r}{hint}; valid: {', '.join(names)}")


class Choices:
    """A fixed set of names for a concept (an enum of strings, or of ints), in the order help shows them.

    Args:
        kind: what a name is, used in error messages (``"uncertainty policy"``).
        names: the valid names.

    Examples:
        >>> ENCODINGS = Choices("encoding", ("png", "jpeg"))
        >>> ENCODINGS.check("png")
        'png'
        >>> ENCODINGS.check("pgn", "--encoding")
        Traceback (most recent call last):
        cxr_tf.errors.UserError: --encoding: unknown encoding 'pgn' (did you mean 'png'?); valid: png, jpeg
    """

    def __init__(self, kind: str, names: Sequence[Any]) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"{kind}: a name is listed twice in {names}")
        self.kind = kind
        self._names = tuple(names)

    def names(self) -> list[Any]:
        return list(self._names)

    def check(self, value: Any, where: str = "") -> Any:
        """``value`` if valid, else the one-line ``UserError`` of ``check_name``."""
        return check_name(self.kind, value, self._names, where)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[Any]:
        return iter(self._names)

    def __repr__(self) -> str:
        return f"Choices({self.kind!r}, {self._names})"


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

    def check(self, name: Any, where: str = "") -> Any:
        """``name`` if registered, else the one-line ``UserError`` of ``check_name``."""
        return check_name(self.kind, name, self.names(), where)

    def get(self, name: str, where: str = "") -> T:
        """The object registered as ``name``; raises ``UserError`` naming the valid choices."""
        return self._items[self.check(name, where)]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


class lazy:  # noqa: N801 - reads as a function at the call site: choices=lazy("cxr_tf.models", "MODELS")
    """The choice set ``module.attribute``, imported on first use.

    Config dataclasses are imported by ``--help``; a set defined beside TensorFlow code (the model zoo, the
    schedules) is named this way so that parsing flags imports TensorFlow only once a name is checked.
    """

    def __init__(self, module: str, attribute: str) -> None:
        self.module, self.attribute = module, attribute

    def resolve(self) -> ChoiceSet:
        return getattr(importlib.import_module(self.module), self.attribute)

    @property
    def kind(self) -> str:
        return self.resolve().kind

    def names(self) -> list[Any]:
        return self.resolve().names()

    def check(self, value: Any, where: str = "") -> Any:
        return self.resolve().check(value, where)

    def __contains__(self, name: object) -> bool:
        return name in self.resolve().names()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"lazy({self.module!r}, {self.attribute!r})"
