"""CheXpert-v1.0-small: ``train.csv`` / ``valid.csv`` -> Manifest.

Irvin et al. 2019, https://arxiv.org/abs/1901.07031. ``--labels`` is one of the two CSVs or the
``CheXpert-v1.0-small`` folder (both, with source splits ``train`` and ``val``, or ``test`` for
``valid.csv`` with ``--valid-split test``). The CSVs' paths
start with ``CheXpert-v1.0-small/``; that prefix is stripped, so paths are relative to the folder
that holds ``train/`` and ``valid/``. ``--images`` is that folder or the one holding it (where the
download was unzipped); both give the same image root.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxr_tf.datasets import DATASETS, catalog, manifest_io
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError

# Cell text -> state. The labeller writes 1.0/0.0/-1.0 and leaves unmentioned findings blank.
STATES = {"1.0": 1, "1": 1, "0.0": 0, "0": 0, "-1.0": -1, "-1": -1, "": None}


@DATASETS.register("chexpert")
def load(cfg: SourceConfig) -> mf.Manifest:
    """The CheXpert manifest: 14 observations (Int8 1/0/-1/<NA>), patient from the path, view, projection,
    sex and age."""
    meta = catalog.entry("chexpert")
    if cfg.labels is None:
        raise UserError("--dataset chexpert needs --labels CheXpert-v1.0-small/train.csv "
                        "(or valid.csv, or the CheXpert-v1.0-small folder)")
    frames, skipped = [], []
    # valid.csv's 234 images carry radiologist labels; published CheXpert AUCs are on them (--valid-split test).
    splits = {name: cfg.valid_split if split == "val" else split for name, split in meta.options["splits"].items()}
    for path, split in _label_files(Path(cfg.labels), splits):
        frame, bad = _read(path, split, meta, cfg.views)
        frames.append(frame)
        skipped.extend(bad)
    return manifest_io.assemble("chexpert", "multilabel", meta.classes, pd.concat(frames, ignore_index=True),
                                skipped, label_tree=meta.label_tree,
                                image_root=None if cfg.images is None else image_root(Path(cfg.images)))


def image_root(images: Path) -> Path:
    """The ``CheXpert-v1.0-small`` folder, given either as itself or as the folder that holds it."""
    inner = images / catalog.entry("chexpert").options["path_prefix"].rstrip("/")
    return inner if inner.is_dir() else images


def _label_files(labels: Path, splits: dict[str, str]) -> list[tuple[Path, str]]:
    """(CSV, source split) pairs: the one file given, or both files of a CheXpert folder."""
    if labels.is_dir():
        files = [(labels / name, split) for name, split in splits.items() if (labels / name).is_file()]
        if not files:
            raise UserError(f"--labels {labels}: folder holds neither {' nor '.join(splits)}")
        return files
    name = labels.name.removesuffix(".gz")
    # chexpert_train.csv.gz and other renamed copies: the split is the file name's train/valid word.
    split = next((s for f, s in splits.items() if name.endswith(f)), "")
    return [(labels, split)]


def _read(path: Path, split: str, meta: catalog.Entry, views: str) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    cols = meta.columns
    rows, malformed = manifest_io.read_table(path, "--labels",
                                             required=[cols["path"], cols["view"], cols["projection"], *meta.classes])
    states, reasons = manifest_io.parse_states(rows, {c: c for c in meta.classes}, STATES)
    raw_path = rows[cols["path"]].str.strip()
    patient = raw_path.str.extract(r"(?:^|/)(patient\d+)/", expand=False)
    no_patient = patient.isna() & (reasons == "")
    reasons[no_patient] = "no patientNNNNN folder in the path"
    view = rows[cols["view"]].str.strip().str.lower()
    bad_view = ~view.isin(["frontal", "lateral"]) & (reasons == "")
    reasons[bad_view] = "unknown Frontal/Lateral value " + view[bad_view].map(repr)
    frame = pd.DataFrame({
        mf.PATH: raw_path.str.removeprefix(meta.options["path_prefix"]),
        mf.PATIENT: patient.fillna(""),
        mf.VIEW: view,
        mf.PROJECTION: rows[cols["projection"]].str.strip(),
        # Older copies of the CSVs may lack the demographic columns: they are optional.
        mf.SEX: manifest_io.patient_sex(rows.get(cols["sex"], pd.Series("", index=rows.index))),
        mf.AGE: manifest_io.patient_age(rows.get(cols["age"], pd.Series("", index=rows.index))),
        mf.SOURCE_SPLIT: split,
        manifest_io.LINE: rows[manifest_io.LINE],
    }).join(states)
    frame, unknown = manifest_io.skip_rows(frame, reasons, mf.PATH)
    if views != "all":
        frame = frame[frame[mf.VIEW] == views]
    return frame.drop(columns=manifest_io.LINE), [malformed, unknown]
