"""The Manifest: every dataset adapter's output, one schema whatever the source.

torchxrayvision gives each dataset the same attributes (``pathologies``, ``labels``, ``csv``); the
Manifest makes that explicit. Its ``frame`` has one row per image and these columns:

================  =========  ===============================================================
column            dtype      meaning
================  =========  ===============================================================
``path``          str        image path relative to the image root, POSIX separators
``patient_id``    str        the source's patient identifier (never empty)
``view``          str        ``frontal``, ``lateral`` or ``""`` when the source does not say
``projection``    str        ``PA``, ``AP``, ``LL``... or ``""``
``source_split``  str        the source's official split (``train``/``val``/``test``) or ``""``
``boxes``         str        JSON list of ``[class, x, y, w, h]`` in source pixels, or ``[]``
``sex``           str        ``M``, ``F`` or ``""`` (optional column: subgroup metrics)
``age``           str        age in whole years at the study, or ``""`` (optional column)
one per class     Int8       1 positive, 0 negative, -1 uncertain, <NA> blank (kept apart from 0)
================  =========  ===============================================================

Rows an adapter could not use (malformed row, unknown label value, duplicate path, a path that
escapes the image root) are not dropped silently: they go to ``skipped`` with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cxr_tf import labels
from cxr_tf.registry import Choices

PATH = "path"
PATIENT = "patient_id"
VIEW = "view"
PROJECTION = "projection"
SOURCE_SPLIT = "source_split"
BOXES = "boxes"
SEX = "sex"
AGE = "age"
SPLIT = "split"
BASE_COLUMNS = (PATH, PATIENT, VIEW, PROJECTION, SOURCE_SPLIT, BOXES)
# Patient attributes some sources record (NIH, CheXpert); a manifest without them reads them as "".
OPTIONAL_COLUMNS = (SEX, AGE)
SKIPPED_COLUMNS = ("path", "reason")

# A manifest's task: several findings per image (multilabel), or exactly one class per image (multiclass).
TASKS = Choices("task", ("multilabel", "multiclass"))


def reason_category(reason: str) -> str:
    """The kind of a skip reason, without row number or details, for counting skips by reason.

    ``"line 12: unknown finding 'Foo' (known: ...)"`` -> ``"unknown finding 'Foo'"``;
    ``"image too small (4x4; ...)"`` -> ``"image too small"``; ``"missing file: not found under X"`` ->
    ``"missing file"``.
    """
    return re.sub(r"^line \d+: ", "", reason).split(" (", 1)[0].split(": ", 1)[0]


def empty_skipped() -> pd.DataFrame:
    """An empty skipped-rows table (``path``, ``reason``)."""
    return pd.DataFrame({c: pd.Series(dtype=str) for c in SKIPPED_COLUMNS})


@dataclass
class Manifest:
    """One dataset's images, patients and raw label states.

    Attributes:
        dataset: registry name of the adapter that made it (``nih``, ``chexpert``...).
        task: ``multilabel`` (independent findings) or ``multiclass`` (exactly one class per image).
        classes: class names in label-column order.
        frame: one row per image, columns ``BASE_COLUMNS`` (+ ``OPTIONAL_COLUMNS``) + ``classes``
            (see module docstring).
        label_tree: child class -> parent class (CheXpert's hierarchy); empty for flat label sets.
        image_root: directory that ``path`` is relative to, or ``None`` when only labels were read.
        skipped: rows the adapter rejected, with ``path`` and ``reason``.
    """

    dataset: str
    task: str  # one of TASKS
    classes: list[str]
    frame: pd.DataFrame
    label_tree: dict[str, str] = field(default_factory=dict)
    image_root: Path | None = None
    skipped: pd.DataFrame = field(default_factory=empty_skipped)

    def __post_init__(self) -> None:
        clash = set(self.classes) & set(BASE_COLUMNS + OPTIONAL_COLUMNS + (SPLIT,))
        if clash:
            raise ValueError(f"class names clash with manifest columns: {sorted(clash)}")
        missing = [c for c in (*BASE_COLUMNS, *self.classes) if c not in self.frame.columns]
        if missing:
            raise ValueError(f"manifest frame lacks columns {missing}")
        unknown = set(self.label_tree) | set(self.label_tree.values())
        if not unknown <= set(self.classes):
            raise ValueError(f"label tree names unknown classes {sorted(unknown - set(self.classes))}")

    def __len__(self) -> int:
        return len(self.frame)

    def states(self) -> "pd.DataFrame":
        """Label states as int8 with blank encoded as ``labels.BLANK`` (-2), shape [N, K]."""
        return self.frame[self.classes].fillna(labels.BLANK).astype("int8")

    def summary(self) -> dict:
        """Counts as JSON-able dict: rows, patients, per-class state counts, per-split counts.

        ``splits`` appears only when the frame has a ``split`` column.
        """
        out: dict = {
            "rows": int(len(self.frame)),
            "patients": int(self.frame[PATIENT].nunique()),
            "classes": state_counts(self.frame, self.classes),
        }
        if SPLIT in self.frame.columns:
            out["splits"] = {
                str(name): {"rows": int(len(group)), "patients": int(group[PATIENT].nunique())}
                for name, group in self.frame.groupby(SPLIT, sort=False)
            }
        return out


def state_counts(frame: pd.DataFrame, classes: list[str]) -> dict[str, dict[str, int]]:
    """Per class, how many rows are positive / negative / uncertain / blank."""
    out = {}
    for name in classes:
        column = frame[name]
        out[name] = {
            "positive": int((column == labels.POSITIVE).sum()),
            "negative": int((column == labels.NEGATIVE).sum()),
            "uncertain": int((column == labels.UNCERTAIN).sum()),
            "blank": int(column.isna().sum()),
        }
    return out
