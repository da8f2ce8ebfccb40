"""COVID-19 Radiography Database adapter on tiny generated PNG folders (no real images are shipped)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_tf.datasets import DATASETS
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError

CLASSES = ["COVID", "Normal", "Lung_Opacity", "Viral Pneumonia"]


def load(images: Path):
    return DATASETS.get("covid_radiography")(SourceConfig(dataset="covid_radiography", images=images))


def make_dataset(root: Path, inner: str) -> Path:
    """Two PNGs per class, in ``<class>/<inner>``, plus a mask per class that must be ignored."""
    for name in CLASSES:
        for i in (1, 2):
            path = root / "COVID-19_Radiography_Dataset" / name / inner / f"{name}-{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), np.full((8, 8), i, np.uint8))
        mask = root / "COVID-19_Radiography_Dataset" / name / "masks" / f"{name}-1.png"
        mask.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(mask), np.zeros((8, 8), np.uint8))
    return root


@pytest.mark.parametrize("inner", ["", "images"])
def test_flat_and_images_layouts_give_four_one_hot_classes(tmp_path, inner):
    manifest = load(make_dataset(tmp_path, inner) / "COVID-19_Radiography_Dataset")
    frame = manifest.frame
    assert manifest.task == "multiclass" and manifest.classes == CLASSES
    assert len(frame) == 8 and not frame["path"].str.contains("masks").any()
    assert (frame[CLASSES].sum(axis=1) == 1).all() and (frame[CLASSES].sum() == 2).all()
    row = frame[frame["Viral Pneumonia"] == 1].iloc[0]
    expected = "/".join(p for p in ("Viral Pneumonia", inner, "Viral Pneumonia-1.png") if p)
    assert row["path"] == expected and row["patient_id"] == "Viral Pneumonia-1"
    assert (manifest.image_root / row["path"]).is_file()


def test_parent_of_the_dataset_folder_is_accepted(tmp_path):
    manifest = load(make_dataset(tmp_path, "images"))
    assert manifest.frame["path"].str.startswith("COVID-19_Radiography_Dataset/").all()
    assert (tmp_path / manifest.frame["path"].iloc[0]).is_file()


def test_folder_without_class_folders_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="class folders"):
        load(tmp_path)
