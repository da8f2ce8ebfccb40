"""The files that ship inside the package: the dataset catalog and the recipes.

In the repository they are the top-level folders ``data_manifests/`` and ``pipelines/`` (as the design
card has them); ``setup.py`` maps them into the package as ``cxr_tf.data_manifests`` and
``cxr_tf.pipelines``, so a wheel or ``pip install .`` carries them. Code reads them only through this
module (``importlib.resources``), never by a path relative to a module file, so they are found wherever
the package is installed and from any working directory.
"""

from __future__ import annotations

import difflib
import importlib.resources
from importlib.resources.abc import Traversable
from pathlib import Path

from cxr_tf.errors import UserError

CATALOG = "data_manifests"
RECIPES = "pipelines"


def folder(name: str) -> Traversable:
    """The shipped folder ``name`` (``CATALOG`` or ``RECIPES``), readable with ``/``, ``open`` and ``iterdir``."""
    try:
        return importlib.resources.files(f"cxr_tf.{name}")
    except ModuleNotFoundError:
        # A source checkout used without installing it (PYTHONPATH=repo): the folders are the
        # repository's own top-level folders, next to the package.
        return Path(__file__).resolve().parents[1] / name


def recipe_names() -> list[str]:
    """Names of the shipped recipes (``pipelines/<name>.toml``), sorted."""
    return sorted(item.name[: -len(".toml")] for item in folder(RECIPES).iterdir() if item.name.endswith(".toml"))


def recipe(ref: str | Path) -> Traversable:
    """The recipe file ``ref`` names: an existing path, else a shipped recipe's name (``.toml`` optional).

    ``pipelines/NAME.toml`` (the repository path the README uses) also finds the shipped recipe when
    the working directory has no such file, so the README's commands work from any directory.

    Raises:
        UserError: neither a file nor a shipped recipe; the message lists the shipped names.
    """
    path = Path(ref)
    if path.is_file():
        return path
    name = path.name[: -len(".toml")] if path.name.endswith(".toml") else path.name
    names = recipe_names()
    if name in names and path.parent in (Path("."), Path(RECIPES)):
        return folder(RECIPES) / f"{name}.toml"
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UserError(f"--recipe {ref}: no such file, and no shipped recipe of that name{hint}; "
                    "list them with python -m cxr_tf list recipes")
