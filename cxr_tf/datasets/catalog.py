"""What cxr_tf knows about each source dataset, read from ``data_manifests/<dataset>.toml``.

The folder ships inside the package (``cxr_tf.resources.CATALOG``).

Classes, the label tree, column names, licence and download page live in those files and
nowhere else; adapters take them from here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache

from cxr_tf import resources
from cxr_tf.datasets.manifest import TASKS


@dataclass(frozen=True)
class Entry:
    """One dataset's catalog entry.

    Attributes:
        name: adapter name (``nih``).
        title: the dataset's name in papers.
        task: ``multilabel`` or ``multiclass``.
        classes: class names in label-column order.
        label_tree: child class -> parent class.
        columns: role -> column name in the source's CSV (``path``, ``patient``, ``findings``...).
        licence: terms of use, in one line.
        download: official download page.
        options: dataset-specific settings (kermany's class sets, folder names...).
    """

    name: str
    title: str
    task: str
    classes: list[str]
    label_tree: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    licence: str = ""
    download: str = ""
    options: dict = field(default_factory=dict)


@cache
def entry(name: str) -> Entry:
    """The catalog entry of dataset ``name`` (parsed once per process; treat it as read-only)."""
    with (resources.folder(resources.CATALOG) / f"{name}.toml").open("rb") as fh:
        data = tomllib.load(fh)
    return Entry(
        name=name,
        title=data["title"],
        task=TASKS.check(data["task"], f"{resources.CATALOG}/{name}.toml: task"),
        classes=list(data["classes"]),
        label_tree=dict(data.get("label_tree", {})),
        columns=dict(data.get("columns", {})),
        licence=data.get("licence", ""),
        download=data.get("download", ""),
        options=dict(data.get("options", {})),
    )
