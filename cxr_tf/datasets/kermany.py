"""Kermany et al. 2018 pediatric pneumonia set: ``chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}`` -> Manifest.

Cell 172(5), https://doi.org/10.1016/j.cell.2018.02.010. No CSV: the class is the folder and, for
``--classes 3``, the word ``bacteria`` or ``virus`` in the file name. The official split is kept as
``source_split``. ``--images`` is the folder holding ``chest_xray/`` or ``chest_xray/`` itself.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxr_tf.datasets import DATASETS, catalog, manifest_io
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError
from cxr_tf.io.imaging import IMAGE_SUFFIXES

# person1946_bacteria_4874.jpeg -> person1946; IM-0001-0001.jpeg -> IM-0001;
# NORMAL2-IM-1427-0001.jpeg -> NORMAL2-IM-1427 (a different numbering from IM-1427, kept apart).
PATIENT_PATTERN = r"^(person\d+)_|^((?:NORMAL2-)?IM-\d+)-\d+"


@DATASETS.register("kermany")
def load(cfg: SourceConfig) -> mf.Manifest:
    """The Kermany manifest: multiclass Normal/Pneumonia (``--classes 2``) or Normal/Bacteria/Virus (``3``)."""
    meta = catalog.entry("kermany")
    if cfg.images is None:
        raise UserError("--dataset kermany needs --images: the folder holding chest_xray/{train,val,test}")
    root = Path(cfg.images)
    base = _base(root, meta.options["splits"])
    prefix = "" if base == root else f"{base.name}/"
    classes = meta.classes if cfg.classes == 2 else meta.options["classes_3"]
    records = [
        (f"{prefix}{split_dir}/{folder}/{name}", split, label, name)
        for split_dir, split in meta.options["splits"].items()
        for folder, label in meta.options["folders"].items()
        for name in _images(base / split_dir / folder)
    ]
    if not records:
        raise UserError(f"--images {root}: no images in chest_xray/{{train,val,test}}/{{NORMAL,PNEUMONIA}}")
    rows = pd.DataFrame(records, columns=[mf.PATH, mf.SOURCE_SPLIT, "label", "name"])
    patient = rows["name"].str.extract(PATIENT_PATTERN)
    rows[mf.PATIENT] = patient[0].fillna(patient[1])
    reasons = pd.Series("", index=rows.index, dtype=object)
    reasons[rows[mf.PATIENT].isna()] = "no patient id in the file name (expected personNNN_ or IM-NNNN-)"
    if cfg.classes == 3:
        kind = rows["name"].str.lower().str.extract(r"_(bacteria|virus)_", expand=False).str.capitalize()
        pneumonia = rows["label"] == "Pneumonia"
        rows.loc[pneumonia, "label"] = kind[pneumonia]
        unknown = pneumonia & kind.isna() & (reasons == "")
        reasons[unknown] = "pneumonia file name says neither bacteria nor virus"
    rows, skipped = manifest_io.skip_rows(rows, reasons, mf.PATH)
    frame = rows[[mf.PATH, mf.PATIENT, mf.SOURCE_SPLIT]].assign(view="frontal").join(
        manifest_io.one_hot(rows["label"], classes))
    return manifest_io.assemble("kermany", "multiclass", classes, frame, [skipped], image_root=root)


def _base(root: Path, splits: dict[str, str]) -> Path:
    """``root/chest_xray`` when present, else ``root`` itself if it holds the split folders."""
    if (root / "chest_xray").is_dir():
        return root / "chest_xray"
    if any((root / name).is_dir() for name in splits):
        return root
    raise UserError(f"--images {root}: holds neither chest_xray/ nor {', '.join(splits)}/ folders")


def _images(folder: Path) -> list[str]:
    """Image file names directly in ``folder`` (none when it does not exist), sorted."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
