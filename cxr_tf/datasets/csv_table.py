"""Any CSV (``--dataset csv``), or a folder with one subfolder per class -> Manifest.

Table mode: ``--labels FILE --path-col COL`` and either ``--label-col COL`` (``--label-sep``
separated class names, multilabel; ``--class-cols`` then fixes the class list) or ``--class-cols A B
...`` (one column per class: 1/0/-1/blank, 1.0/0.0/-1.0 or true/false). ``--patient-col`` is
optional; without it each image is its own patient.
Folder mode (no ``--labels``): ``--images DIR`` whose subfolders are the classes (multiclass).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxr_tf import reporting
from cxr_tf.datasets import DATASETS, manifest_io
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError

# Cell text (stripped, lower case) -> state.
STATES = {"1": 1, "1.0": 1, "true": 1, "0": 0, "0.0": 0, "false": 0, "-1": -1, "-1.0": -1, "": None}
log = reporting.logger("datasets.csv")


@DATASETS.register("csv")
def load(cfg: SourceConfig) -> mf.Manifest:
    """The manifest of a user's CSV (multilabel) or class folders (multiclass)."""
    if cfg.labels is None:
        return _folders(cfg)
    if cfg.path_col is None:
        raise UserError("--dataset csv --labels FILE needs --path-col (the column holding image paths)")
    if cfg.label_col is None and not cfg.class_cols:
        raise UserError("--dataset csv needs --label-col COL or --class-cols A B ... to know the labels")
    label_columns = [cfg.label_col] if cfg.label_col else cfg.class_cols
    required = [cfg.path_col, *label_columns] + ([cfg.patient_col] if cfg.patient_col else [])
    rows, malformed = manifest_io.read_table(Path(cfg.labels), "--labels", required=required)
    if cfg.label_col:
        classes = cfg.class_cols or _names(rows[cfg.label_col], cfg.label_sep)
        states, reasons = manifest_io.names_to_states(rows[cfg.label_col], classes, cfg.label_sep)
    else:
        classes = list(cfg.class_cols)
        lowered = rows[classes].apply(lambda column: column.str.lower())
        states, reasons = manifest_io.parse_states(lowered, {c: c for c in classes}, STATES)
    path = rows[cfg.path_col].str.strip()
    if cfg.patient_col:
        patient = rows[cfg.patient_col].str.strip()
        reasons[(patient == "") & (reasons == "")] = f"empty patient id in column {cfg.patient_col!r}"
    else:
        log.info("csv: no --patient-col, so every image is its own patient (splits cannot keep a "
                 "patient's images together)")
        patient = path
    frame = pd.DataFrame({mf.PATH: path, mf.PATIENT: patient, manifest_io.LINE: rows[manifest_io.LINE]})
    frame, unknown = manifest_io.skip_rows(frame.join(states), reasons, mf.PATH)
    return manifest_io.assemble("csv", "multilabel", classes, frame, [malformed, unknown],
                                image_root=None if cfg.images is None else Path(cfg.images))


def _names(cells: pd.Series, sep: str) -> list[str]:
    """Every class name met in a ``sep``-separated column, sorted."""
    names = cells.str.split(sep, regex=False).explode().str.strip()
    return sorted(set(names[names.notna() & (names != "")]))


def _folders(cfg: SourceConfig) -> mf.Manifest:
    if cfg.images is None:
        raise UserError("--dataset csv needs --labels FILE.csv, or --images DIR with one subfolder per class")
    root = Path(cfg.images)
    if not root.is_dir():
        raise UserError(f"--images {root}: not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"--images {root}: no class subfolders")
    walks = {name: manifest_io.walk_images(root / name) for name in classes}
    records = [(f"{name}/{relative}", name) for name, walk in walks.items() for relative in walk.paths]
    unwalked = pd.DataFrame([(f"{name}/{relative}", reason) for name, walk in walks.items()
                             for relative, reason in walk.skipped], columns=["path", "reason"])
    rows = pd.DataFrame(records, columns=[mf.PATH, "label"])
    log.info("csv folder mode: every image is its own patient (no patient ids in a folder layout)")
    frame = pd.DataFrame({mf.PATH: rows[mf.PATH], mf.PATIENT: rows[mf.PATH]}).join(
        manifest_io.one_hot(rows["label"], classes))
    return manifest_io.assemble("csv", "multiclass", classes, frame, [unwalked], image_root=root)
