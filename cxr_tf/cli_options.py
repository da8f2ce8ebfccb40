"""Config dataclasses as command-line flags: the argparse half of ``cxr_tf.config``.

``parse`` builds a parser with one flag per field (``image_size`` -> ``--image-size``), reads a
``--recipe`` and ``--set`` overrides when asked, and hands the values to ``config.build``, which checks
them all (ranges, choices) the same way for flags and recipe keys. A field's choice set gives the flag
its ``{a,b}`` metavar (a field that lists a kind, ``--model``, points to ``--list-models`` instead); a
set named with ``registry.lazy`` is imported only when ``--help`` shows it or a value is checked.
Only the ``python -m cxr_tf.<verb>`` modules import this module; library code uses ``cxr_tf.config``.

Examples:
    >>> from dataclasses import dataclass
    >>> from cxr_tf.config import option
    >>> @dataclass
    ... class Cfg:
    ...     size: int = option(224, "stored image side, pixels", at_least=16, at_most=4096)
    >>> parse(Cfg, ["--size", "96"]).size
    96
    >>> parse(Cfg, ["--size", "0"])
    Traceback (most recent call last):
    cxr_tf.errors.UserError: Cfg: --size 0: must be between 16 and 4096
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Sequence, TypeVar

from cxr_tf import config, resources
from cxr_tf.cli import ArgumentParser
from cxr_tf.registry import ChoiceSet

C = TypeVar("C")


class _Metavar:
    """A flag's ``{a,b,c}`` metavar, read from its choice set when argparse formats help or usage.

    argparse formats a metavar with ``%s``, so a lazy set is imported by ``--help`` and not by parsing.
    Values are not checked by argparse (``choices=`` would give its own, second, error message) but by
    ``config.build``, with the set's one line.
    """

    def __init__(self, choices: ChoiceSet) -> None:
        self.choices = choices

    def __str__(self) -> str:
        return "{" + ",".join(map(str, self.choices.names())) + "}"


def _add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, _ = config.base_type(hints[f.name])
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": _help(f)}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            kwargs.update(nargs="+", type=item, action="extend")  # repeated flags accumulate
        else:
            kwargs["type"] = tp
        action = parser.add_argument(config.flag(f.name), **kwargs)
        # Set after add_argument, which formats a metavar to check it (that would import a lazy set). A field
        # naming a kind (``lists="models"``) points to --list-KIND instead, which says what each name is; a
        # {...} of thirty model names would bury the usage line.
        if f.metadata.get("choices") is not None and not f.metadata.get("lists"):
            action.metavar = _Metavar(f.metadata["choices"])


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
            values.update(config.load_toml(resources.recipe(recipe)))
        values.update(config.parse_overrides(overrides))
    values.update(args)
    return config.build(cls, values, prog or cls.__name__)


def parse_with_positionals(cls: type[C], argv: Sequence[str], prog: str, description: str, *, field: str,
                           metavar: str) -> C:
    """``parse`` for commands that also take bare arguments: ``cmd A B --x 1`` is ``cmd --field A B --x 1``.

    ``field`` is a list field of ``cls``; bare arguments come first, then those given with its flag.
    """
    parser = parser_for(cls, prog, description)
    parser.add_argument("bare", nargs="*", metavar=metavar, help=f"same as {config.flag(field)}")
    values = vars(parser.parse_intermixed_args(list(argv)))
    values[field] = values.pop("bare") + values.get(field, [])
    return config.build(cls, values, prog)
