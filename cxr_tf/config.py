"""One config dataclass per command: CLI flags and TOML recipe keys map to its fields one to one.

A field ``image_size`` is the flag ``--image-size`` and the recipe key ``image_size``. Field
metadata carries the help text, the allowed choices (a ``cxr_tf.registry`` choice set) and, for numbers,
the allowed range (``Range``): every flag and recipe key is checked once, in ``build``, before a command
does anything (a float must also be finite). A run writes its resolved config back as TOML (``to_toml``),
so it can be re-run with ``--recipe``.

This is the library half, free of argparse; ``cxr_tf.cli_options`` turns a config dataclass into flags.

Examples:
    >>> from dataclasses import dataclass
    >>> from cxr_tf.registry import Choices
    >>> @dataclass
    ... class Sized:
    ...     size: int = option(224, "image side, pixels", at_least=16, at_most=4096)
    ...     mode: str = option("pad", "resize mode", choices=Choices("resize mode", ("pad", "crop")))
    >>> build(Sized, {"size": 96}, "recipe").size
    96
    >>> build(Sized, {"size": 0}, "recipe")
    Traceback (most recent call last):
    cxr_tf.errors.UserError: recipe: --size 0: must be between 16 and 4096
    >>> build(Sized, {"mode": "pda"}, "recipe")
    Traceback (most recent call last):
    cxr_tf.errors.UserError: recipe: --mode: unknown resize mode 'pda' (did you mean 'pad'?); valid: pad, crop
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Sequence, TypeVar

from cxr_tf.errors import UserError
from cxr_tf.registry import ChoiceSet, check_name

C = TypeVar("C")
# Largest seed NumPy (np.random.seed) and so keras.utils.set_random_seed accept.
SEED_MAX = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric field accepts: bounds inclusive (``at_least``, ``at_most``) or exclusive
    (``above``, ``below``); ``None`` leaves that side open. A float must also be finite."""

    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None

    def __str__(self) -> str:
        low = (">=", self.at_least) if self.at_least is not None else (">", self.above)
        high = ("<=", self.at_most) if self.at_most is not None else ("<", self.below)
        if low[1] is not None and high[1] is not None:
            if low[0] == ">=" and high[0] == "<=":
                return f"between {_number(low[1])} and {_number(high[1])}"
            return (f"in {'[' if low[0] == '>=' else '('}{_number(low[1])}, {_number(high[1])}"
                    f"{']' if high[0] == '<=' else ')'}")
        side = low if low[1] is not None else high
        return f"{side[0]} {_number(side[1])}"

    def admits(self, value: float) -> bool:
        return ((self.at_least is None or value >= self.at_least) and (self.above is None or value > self.above)
                and (self.at_most is None or value <= self.at_most) and (self.below is None or value < self.below))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _metadata(help: str, choices: ChoiceSet | None, bounds: dict[str, float | None],
              lists: str | None) -> dict[str, Any]:
    allowed = Range(**bounds) if any(v is not None for v in bounds.values()) else None
    return {"help": help + (f" ({allowed})" if allowed else ""), "choices": _choice_set(choices),
            "range": allowed, "lists": lists}


def _choice_set(choices: ChoiceSet | None) -> ChoiceSet | None:
    """``choices`` itself: a set re-typed as a list or tuple here would be a second definition of it."""
    if choices is not None and not callable(getattr(choices, "check", None)):
        raise TypeError(f"choices must be a cxr_tf.registry Registry, Choices or lazy set, got {choices!r}")
    return choices


def option(default: Any, help: str, *, choices: ChoiceSet | None = None, lists: str | None = None,
           at_least: float | None = None, above: float | None = None, at_most: float | None = None,
           below: float | None = None) -> Any:
    """A dataclass field with its CLI help, allowed values and, for a number (or list of numbers), its range.

    ``choices`` is the set the value (or each value of a list) must belong to, defined once where the
    concept lives (``cxr_tf.registry``). ``lists`` names the ``cxr_tf.listing`` kind the field takes
    (``"models"``): the command then has a ``--list-models`` flag.
    """
    meta = _metadata(help, choices, dict(at_least=at_least, above=above, at_most=at_most, below=below), lists)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def required(help: str, *, choices: ChoiceSet | None = None, lists: str | None = None) -> Any:
    """A dataclass field that must be given (by flag or recipe); ``choices`` and ``lists`` as in ``option``."""
    return dataclasses.field(metadata={"help": help, "choices": _choice_set(choices), "required": True,
                                       "lists": lists})


def flag(name: str) -> str:
    """The flag of field ``name``: ``image_size`` -> ``--image-size``."""
    return "--" + name.replace("_", "-")


def base_type(tp: Any) -> tuple[Any, bool]:
    """(type without ``None``, whether ``None`` is allowed) of an annotation."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def build(cls: type[C], values: dict[str, Any], source: str) -> C:
    """Instantiate ``cls`` from ``values``, naming ``source`` in any error."""
    names = sorted(f.name for f in dataclasses.fields(cls))
    for key in sorted(values):  # the first unknown key, with the closest valid one
        check_name("key", key, names, source)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("required") and f.name not in values:
            raise UserError(f"{source}: {flag(f.name)} is required")
        if f.name in values:
            values[f.name] = _coerce(values[f.name], hints[f.name], f.name, source)
            _check_range(values[f.name], f.metadata.get("range"), f.name, source)
            _check_choice(values[f.name], f.metadata.get("choices"), f.name, source)
    return cls(**values)


def _check_choice(value: Any, choices: ChoiceSet | None, name: str, source: str) -> None:
    """A value (or each value of a list) outside ``choices`` is the set's one-line ``UserError``."""
    if choices is None or value is None:
        return
    for item in value if isinstance(value, list) else [value]:
        choices.check(item, f"{source}: {flag(name)}")


def _check_range(value: Any, allowed: Range | None, name: str, source: str) -> None:
    """A number (or each number of a list) that is not finite or outside ``allowed`` is a ``UserError``."""
    for number in value if isinstance(value, list) else [value]:
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            continue
        finite = math.isfinite(number)
        if not finite or (allowed is not None and not allowed.admits(number)):
            must = ("a finite number" + (f" {allowed}" if allowed else "")) if not finite else str(allowed)
            raise UserError(f"{source}: {flag(name)} {number}: must be {must}")


def _coerce(value: Any, annotation: Any, name: str, source: str) -> Any:
    tp, optional = base_type(annotation)
    if value is None and optional:
        return None
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise UserError(f"{source}: {name} must be a list, got {value!r}")
        return [_coerce(v, item, name, source) for v in value]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is Path and isinstance(value, str):
        return Path(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise UserError(f"{source}: {name} must be {tp.__name__}, got {value!r}")
    return value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as a dict; VALUE is TOML (``3``, ``true``, ``[1, 2]``) or a bare string."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        try:
            values[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            values[key.strip()] = raw  # a bare word is a string, as users expect
    return values


def load_toml(path: Path | Traversable) -> dict[str, Any]:
    """Read a TOML recipe; a missing or malformed file is a ``UserError`` naming it."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"recipe {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"recipe {path}: {err}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain TOML-able values (paths as strings, ``None`` dropped)."""
    out = {}
    for key, value in dataclasses.asdict(cfg).items():
        if value is None:
            continue
        out[key] = str(value) if isinstance(value, Path) else value
    return out


def to_toml(cfg: Any) -> str:
    """The resolved config as TOML text, readable back with ``--recipe``."""
    import tomli_w

    return tomli_w.dumps(to_dict(cfg))
