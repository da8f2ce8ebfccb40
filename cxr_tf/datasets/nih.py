"""NIH ChestX-ray14: ``Data_Entry_2017*.csv`` (+ ``BBox_List_2017.csv``) -> Manifest.

Wang et al. 2017, https://arxiv.org/abs/1705.02315. Findings are text-mined, so every state is
1 or 0 (no blank); "No Finding" is a class too (1 exactly when the 14 findings are 0). Images live in
``images_001/images/`` ... ``images_012/images/``: with ``--images ROOT`` the adapter finds each file
name anywhere below ROOT (one ``os.scandir`` walk) and skips rows whose file is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cxr_tf import reporting
from cxr_tf.datasets import DATASETS, catalog, manifest_io
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError

log = reporting.logger("datasets.nih")


@DATASETS.register("nih")
def load(cfg: SourceConfig) -> mf.Manifest:
    """The NIH manifest: 14 findings + No Finding (Int8 1/0), patient id as text, view frontal, PA/AP,
    sex and age."""
    meta = catalog.entry("nih")
    cols = meta.columns
    if cfg.labels is None:
        raise UserError("--dataset nih needs --labels Data_Entry_2017_v2020.csv (or .csv.gz)")
    rows, malformed = manifest_io.read_table(
        cfg.labels, "--labels", names=meta.options["positional_columns"],
        required=[cols["path"], cols["findings"], cols["patient"], cols["projection"]])
    states, reasons = manifest_io.names_to_states(rows[cols["findings"]], meta.classes, "|")
    rows = pd.concat([rows, states], axis=1)
    rows, unknown = manifest_io.skip_rows(rows, reasons, cols["path"])
    frame = pd.DataFrame({
        mf.PATH: rows[cols["path"]].str.strip(),
        mf.PATIENT: rows[cols["patient"]].str.strip(),
        mf.VIEW: "frontal",
        mf.PROJECTION: rows[cols["projection"]].str.strip(),
        mf.SEX: manifest_io.patient_sex(rows[cols["sex"]]),
        mf.AGE: manifest_io.patient_age(rows[cols["age"]]),
        **{name: rows[name] for name in meta.classes},
    })
    skipped = [malformed, unknown]
    if cfg.test_list is not None:
        test = read_test_list(cfg.test_list)
        frame[mf.SOURCE_SPLIT] = frame[mf.PATH].isin(test).map({True: "test", False: "train"})
    if cfg.bbox is not None:
        frame[mf.BOXES] = frame[mf.PATH].map(read_boxes(cfg.bbox)).fillna("[]")
    if cfg.images is not None:
        frame, missing = _locate(frame, Path(cfg.images))
        skipped.append(missing)
    return manifest_io.assemble("nih", "multilabel", meta.classes, frame, skipped,
                                image_root=None if cfg.images is None else Path(cfg.images))


def read_test_list(path: Path) -> set[str]:
    """``test_list.txt`` (one image file name a line, 25,596 of them) -> the set of names.

    The official NIH split (Wang et al. 2017; ``train_val_list.txt`` holds every other image) assigns
    whole patients, so published test AUCs are on these images.
    """
    try:
        names = {line.strip() for line in Path(path).read_text().splitlines() if line.strip()}
    except OSError as err:
        raise UserError(f"--test-list {path}: cannot read it ({err.strerror or err}); "
                        "give NIH's test_list.txt") from None
    if not names:
        raise UserError(f"--test-list {path}: the file is empty; give NIH's test_list.txt")
    return names


def read_boxes(path: Path) -> dict[str, str]:
    """``BBox_List_2017.csv`` -> image file name -> JSON ``[[finding, x, y, w, h], ...]`` (source pixels).

    The file's header is ``Image Index,Finding Label,Bbox [x,y,w,h],,,``: the four box numbers
    are the third to sixth fields. "Infiltrate" is renamed to the class name "Infiltration".
    """
    meta = catalog.entry("nih")
    cols = meta.columns
    rows, malformed = manifest_io.read_table(
        path, "--bbox", names=[cols["bbox_path"], cols["bbox_finding"], "x", "y", "w", "h"],
        required=[cols["bbox_path"], cols["bbox_finding"]])
    if len(malformed):
        log.warning("--bbox %s: %d malformed row(s) ignored, first: %s", path, len(malformed),
                    malformed["reason"].iloc[0])
    finding = rows[cols["bbox_finding"]].str.strip().replace(meta.options["bbox_spelling"])
    numbers = rows[["x", "y", "w", "h"]].apply(pd.to_numeric, errors="coerce")
    good = finding.isin(meta.classes) & numbers.notna().all(axis=1)
    if not good.all():
        log.warning("--bbox %s: %d row(s) with an unknown finding or a non-number ignored", path,
                    int((~good).sum()))
    boxes: dict[str, list] = {}
    # 984 rows in the official file: a plain loop is clearer than a groupby here.
    for name, label, box in zip(rows[cols["bbox_path"]][good].str.strip(), finding[good],
                                numbers[good].itertuples(index=False)):
        boxes.setdefault(name, []).append([label, *map(float, box)])
    return {name: json.dumps(items) for name, items in boxes.items()}


def _locate(frame: pd.DataFrame, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace each file name by its path relative to ``root``; rows whose file is absent are skipped."""
    if not root.is_dir():
        raise UserError(f"--images {root}: not a directory")
    walk = manifest_io.walk_images(root)
    found = index_files(walk.paths)
    located = frame[mf.PATH].map(found)
    missing = located.isna()
    skipped = pd.DataFrame({"path": frame.loc[missing, mf.PATH],
                            "reason": f"missing file: not found under {root}"})
    # Folders the walk could not enter are listed too: their images are the likely missing ones.
    skipped = pd.concat([pd.DataFrame(walk.skipped, columns=["path", "reason"]), skipped], ignore_index=True)
    frame = frame[~missing].copy()
    frame[mf.PATH] = located[~missing]
    return frame, skipped


def index_files(paths: list[str]) -> dict[str, str]:
    """File name -> path of every image in ``paths`` (``walk_images`` output); the first (sorted) path wins."""
    found: dict[str, str] = {}
    for relative in paths:
        found.setdefault(relative.rsplit("/", 1)[-1], relative)
    return found
