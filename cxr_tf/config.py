"""One config dataclass per command: CLI flags and TOML recipe keys map to its fields one to one.

A field ``image_size`` is the flag ``--image-size`` and the recipe key ``image_size``. Field
metadata carries the help text, the allowed choices and, for numbers, the allowed range (``Range``):
every flag and recipe key is checked once, in ``build``, before a command does anything (a float must
also be finite). A run writes its resolved config back as TOML (``to_toml``), so it can be re-run with
``--recipe``.

Examples:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Cfg:
    ...     size: int = option(224, "stored image side, pixels")
    >>> parse(Cfg, ["--size", "96"]).size
    96
    >>> @dataclass
    ... class Sized:
    ...     size: int = option(224, "image side, pixels", at_least=16, at_most=4096)
    >>> parse(Sized, ["--size", "0"])
    Traceback (most recent call last):
    cxr_tf.errors.UserError: Sized: --size 0: must be between 16 and 4096
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tomllib
import types
import typing
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Sequence, TypeVar

from cxr_tf import resources
from cxr_tf.cli import ArgumentParser
from cxr_tf.errors import UserError

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


def _metadata(help: str, choices: Sequence[Any] | None, bounds: dict[str, float | None],
              lists: str | None) -> dict[str, Any]:
    allowed = Range(**bounds) if any(v is not None for v in bounds.values()) else None
    return {"help": help + (f" ({allowed})" if allowed else ""), "choices": list(choices) if choices else None,
            "range": allowed, "lists": lists}


def option(default: Any, help: str, *, choices: Sequence[Any] | None = None, lists: str | None = None,
           at_least: float | None = None, above: float | None = None, at_most: float | None = None,
           below: float | None = None) -> Any:
    """A dataclass field with its CLI help, allowed values and, for a number (or list of numbers), its range.

    ``lists`` names the ``cxr_tf.listing`` kind the field takes (``"models"``): the command then has a
    ``--list-models`` flag.
    """
    meta = _metadata(help, choices, dict(at_least=at_least, above=above, at_most=at_most, below=below), lists)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def required(help: str, *, choices: Sequence[Any] | None = None, lists: str | None = None) -> Any:
    """A dataclass field that must be given (by flag or recipe); ``lists`` as in ``option``."""
    return dataclasses.field(metadata={"help": help, "choices": choices, "required": True, "lists": lists})


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(type without ``None``, whether ``None`` is allowed) of an annotation."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, _ = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": _help(f)}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            kwargs.update(nargs="+", type=item, action="extend")  # repeated flags accumulate
        else:
            kwargs["type"] = tp
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag, **kwargs)


def _help(f: dataclasses.Field) -> str:
    """A field's help text ending in its default, as every ``--help`` shows it.

    Flags default to ``argparse.SUPPRESS`` (so a recipe can supply what the command line leaves out),
    which hides them from ``ArgumentDefaultsHelpFormatter``; the dataclass holds the real default.
    """
    text = f.metadata.get("help", "")
    if f.metadata.get("required"):
        return f"{text} (required)"
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if default in (None, "", []) or "default" in text:  # the help says what happens then
        return text
    if isinstance(default, bool):
        shown = "true" if default else "false"
    else:
        shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
    return f"{text} (default: {shown.replace('%', '%%')})"


def parser_for(cls: type, prog: str, description: str, recipes: bool = False) -> ArgumentParser:
    """An argument parser with one flag per field of ``cls`` (plus ``--recipe``/``--set``).

    It also has the common flags of ``cli.ArgumentParser``: ``--version``, ``--verbose``/``--quiet``, and
    ``--list-KIND`` for each kind a field lists (``option(..., lists=KIND)``) and for recipes.
    """
    lists = [f.metadata["lists"] for f in dataclasses.fields(cls) if f.metadata.get("lists")]
    parser = ArgumentParser(prog=prog, description=description, lists=lists + ["recipes"] * recipes)
    if recipes:
        parser.add_argument("--recipe", help="TOML recipe whose keys are the flags' names: a file, or the name "
                                             "of a shipped recipe (see --list-recipes)")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override one recipe key (repeatable); VALUE is TOML")
    _add_arguments(parser, cls)
    return parser


def build(cls: type[C], values: dict[str, Any], source: str) -> C:
    """Instantiate ``cls`` from ``values``, naming ``source`` in any error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"{source}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("required") and f.name not in values:
            raise UserError(f"{source}: --{f.name.replace('_', '-')} is required")
        choices = f.metadata.get("choices")
        if choices and f.name in values and values[f.name] not in choices:
            raise UserError(f"{source}: {f.name}={values[f.name]!r} is not one of {choices}")
        if f.name in values:
            values[f.name] = _coerce(values[f.name], hints[f.name], f.name, source)
            _check_range(values[f.name], f.metadata.get("range"), f.name, source)
    return cls(**values)


def _check_range(value: Any, allowed: Range | None, name: str, source: str) -> None:
    """A number (or each number of a list) that is not finite or outside ``allowed`` is a ``UserError``."""
    for number in value if isinstance(value, list) else [value]:
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            continue
        finite = math.isfinite(number)
        if not finite or (allowed is not None and not allowed.admits(number)):
            must = ("a finite number" + (f" {allowed}" if allowed else "")) if not finite else str(allowed)
            raise UserError(f"{source}: --{name.replace('_', '-')} {number}: must be {must}")


def _coerce(value: Any, annotation: Any, name: str, source: str) -> Any:
    tp, optional = _base_type(annotation)
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


def parse(cls: type[C], argv: Sequence[str], prog: str = "", description: str = "",
          recipes: bool = False) -> C:
    """Parse ``argv`` (and, with ``recipes``, a ``--recipe`` file and ``--set`` overrides) into ``cls``.

    Precedence: explicit flags > ``--set`` > recipe > field defaults.
    """
    args = vars(parser_for(cls, prog, description, recipes).parse_args(list(argv)))
    values: dict[str, Any] = {}
    if recipes:
        recipe, overrides = args.pop("recipe"), args.pop("set")
        if recipe is not None:
            values.update(load_toml(resources.recipe(recipe)))
        values.update(parse_overrides(overrides))
    values.update(args)
    return build(cls, values, prog or cls.__name__)


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


def parse_with_positionals(cls: type[C], argv: Sequence[str], prog: str, description: str, *, field: str,
                           metavar: str) -> C:
    """``parse`` for commands that also take bare arguments: ``cmd A B --x 1`` is ``cmd --field A B --x 1``.

    ``field`` is a list field of ``cls``; bare arguments come first, then those given with its flag.
    """
    parser = parser_for(cls, prog, description)
    parser.add_argument("bare", nargs="*", metavar=metavar, help=f"same as --{field.replace('_', '-')}")
    values = vars(parser.parse_intermixed_args(list(argv)))
    values[field] = values.pop("bare") + values.get(field, [])
    return build(cls, values, prog)


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
