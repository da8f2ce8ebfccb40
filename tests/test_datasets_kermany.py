"""Kermany pediatric pneumonia adapter on the 16 real JPEGs and tiny generated files."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_tf.datasets import splits
from cxr_tf.datasets import DATASETS
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError


def load(images: Path, classes: int = 2):
    return DATASETS.get("kermany")(SourceConfig(dataset="kermany", images=images, classes=classes))


def touch_images(root: Path, relatives: list[str]) -> Path:
    for relative in relatives:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / relative), np.zeros((8, 8), np.uint8))
    return root


@pytest.mark.parametrize("below", ["", "chest_xray"])
def test_root_or_chest_xray_folder_give_the_same_images(fixtures, below):
    root = fixtures / "kermany" / below
    manifest = load(root)
    prefix = "chest_xray/" if below == "" else ""
    assert len(manifest) == 16 and manifest.image_root == root
    assert manifest.frame["path"].iloc[0] == f"{prefix}val/NORMAL/NORMAL2-IM-1427-0001.jpeg"
    assert (root / manifest.frame["path"].iloc[-1]).is_file()


def test_two_classes_are_one_hot_folder_labels(fixtures):
    manifest = load(fixtures / "kermany")
    assert manifest.task == "multiclass" and manifest.classes == ["Normal", "Pneumonia"]
    frame = manifest.frame
    assert (frame[manifest.classes].sum(axis=1) == 1).all()
    assert (frame.loc[frame["path"].str.contains("/NORMAL/"), "Normal"] == 1).all()
    assert set(frame["source_split"]) == {"val"}


def test_patient_ids_come_from_file_names(fixtures):
    frame = load(fixtures / "kermany").frame.set_index("path")
    assert frame.loc["chest_xray/val/NORMAL/NORMAL2-IM-1427-0001.jpeg", "patient_id"] == "NORMAL2-IM-1427"
    assert frame.loc["chest_xray/val/PNEUMONIA/person1946_bacteria_4874.jpeg", "patient_id"] == "person1946"
    assert frame.loc["chest_xray/val/PNEUMONIA/person1946_bacteria_4875.jpeg", "patient_id"] == "person1946"


def test_three_classes_split_pneumonia_by_file_name_and_keep_official_splits(tmp_path):
    root = touch_images(tmp_path, [
        "chest_xray/train/NORMAL/IM-0001-0001.jpeg",
        "chest_xray/train/NORMAL/NORMAL2-IM-0001-0001.jpeg",
        "chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg",
        "chest_xray/test/PNEUMONIA/person2_virus_7.jpeg",
        "chest_xray/test/PNEUMONIA/person3_unknown.jpeg",
    ])
    manifest = load(root, classes=3)
    frame = manifest.frame.set_index("path")
    assert manifest.classes == ["Normal", "Bacteria", "Virus"]
    assert frame["patient_id"].tolist() == ["IM-0001", "NORMAL2-IM-0001", "person1", "person2"]
    assert frame.loc["chest_xray/test/PNEUMONIA/person2_virus_7.jpeg", ["Virus", "source_split"]].tolist() == \
        [1, "test"]
    assert frame.loc["chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg", "Bacteria"] == 1
    assert manifest.skipped["path"].tolist() == ["chest_xray/test/PNEUMONIA/person3_unknown.jpeg"]


def test_folder_without_the_layout_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="chest_xray"):
        load(tmp_path)


def kaggle_layout(root: Path, val_from: Path | None = None) -> Path:
    """A Kermany tree of tiny images named as the real ones: 30 normal, 30 bacterial and 20 viral patients in
    train, 6/6/4 in test, one to three films each; with ``val_from``, the real 16-image Mendeley val beside."""
    names = []
    for split, (normal, bacteria, virus), first in (("train", (30, 30, 20), 0), ("test", (6, 6, 4), 500)):
        for i in range(normal):
            names += [f"chest_xray/{split}/NORMAL/IM-{first + i:04d}-000{k}.jpeg" for k in range(1, 2 + i % 3)]
        for i in range(bacteria + virus):
            kind = "bacteria" if i < bacteria else "virus"
            names += [f"chest_xray/{split}/PNEUMONIA/person{first + i}_{kind}_{k}.jpeg" for k in range(1 + i % 2)]
    touch_images(root, names)
    if val_from is not None:
        shutil.copytree(val_from / "chest_xray" / "val", root / "chest_xray" / "val")
    return root


@pytest.mark.parametrize("mendeley_val", [False, True])
def test_split_source_val_carves_a_stratified_patient_level_val_from_train_and_keeps_test(
        tmp_path, fixtures, mendeley_val):
    root = kaggle_layout(tmp_path, fixtures / "kermany" if mendeley_val else None)
    manifest = load(root, classes=3)
    frame = splits.assign_splits(manifest, "source", val=0.2, test=0.2, seed=0).frame
    official_test = frame["source_split"] == "test"
    assert (frame["split"] == "test").tolist() == official_test.tolist()
    assert frame.groupby("patient_id")["split"].nunique().max() == 1
    val = frame[frame["split"] == "val"]
    assert (val[["Normal", "Bacteria", "Virus"]].sum() > 0).all()
    # The 16 Mendeley val images (no viral case) went back to the train pool before the carve-out.
    assert not (frame.loc[frame["source_split"] == "val", "split"] == "test").any()
    pool = frame.loc[~official_test, "patient_id"].nunique()
    assert abs(val["patient_id"].nunique() - 0.2 * pool) <= 3


def test_split_source_without_val_keeps_the_sources_val_or_carves_one_when_it_has_none(tmp_path, fixtures):
    mendeley = splits.assign_splits(load(kaggle_layout(tmp_path / "m", fixtures / "kermany")), "source", val=None,
                                    test=0.2, seed=0).frame
    assert (mendeley["split"] == "val").tolist() == (mendeley["source_split"] == "val").tolist()
    kaggle = splits.assign_splits(load(kaggle_layout(tmp_path / "k")), "source", val=None, test=0.2, seed=0).frame
    assert (kaggle["split"] == "val").any() and (kaggle["split"] == "test").tolist() == \
        (kaggle["source_split"] == "test").tolist()
