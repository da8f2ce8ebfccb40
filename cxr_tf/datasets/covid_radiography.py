"""COVID-19 Radiography Database: ``{COVID,Normal,Lung_Opacity,Viral Pneumonia}/`` PNG folders -> Manifest.

Chowdhury et al. 2020 and Rahman et al. 2021 (see ``data_manifests/covid_radiography.toml``).
Each class folder holds its PNGs directly (first releases) or in ``images/`` beside ``masks/``
(later releases); masks are not images of the dataset and are ignored. The source has no patient
ids, so each file's name stem is its patient id: splits cannot group repeat films of one person.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxr_tf.datasets import DATASETS, catalog, manifest_io
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError
from cxr_tf.io.imaging import IMAGE_SUFFIXES

DATASET_FOLDER = "COVID-19_Radiography_Dataset"


@DATASETS.register("covid_radiography")
def load(cfg: SourceConfig) -> mf.Manifest:
    """The COVID-19 Radiography manifest: 4-class multiclass, patient id = file name stem."""
    meta = catalog.entry("covid_radiography")
    if cfg.images is None:
        raise UserError(f"--dataset covid_radiography needs --images: the {DATASET_FOLDER} folder")
    root = Path(cfg.images)
    folders = meta.options["folders"]
    base = root / DATASET_FOLDER if (root / DATASET_FOLDER).is_dir() else root
    if not any((base / name).is_dir() for name in folders):
        raise UserError(f"--images {root}: holds none of the class folders {', '.join(folders)}")
    prefix = "" if base == root else f"{DATASET_FOLDER}/"
    records = [(f"{prefix}{folder}/{relative}", label)
               for folder, label in folders.items()
               for relative in _class_images(base / folder)]
    rows = pd.DataFrame(records, columns=[mf.PATH, "label"])
    frame = pd.DataFrame({mf.PATH: rows[mf.PATH],
                          mf.PATIENT: rows[mf.PATH].str.rsplit("/", n=1).str[-1].str.rsplit(".", n=1).str[0],
                          mf.VIEW: "frontal"}).join(manifest_io.one_hot(rows["label"], meta.classes))
    return manifest_io.assemble("covid_radiography", "multiclass", meta.classes, frame, [], image_root=root)


def _class_images(folder: Path) -> list[str]:
    """Image paths relative to a class folder: ``images/*`` when that exists, else the folder's own files."""
    if not folder.is_dir():
        return []
    inner = folder / "images"
    source, prefix = (inner, "images/") if inner.is_dir() else (folder, "")
    return sorted(prefix + p.name for p in source.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
