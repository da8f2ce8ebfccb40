"""The generic csv adapter: label column, class columns, folder mode, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_tf.datasets import DATASETS
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError


def load(**flags):
    return DATASETS.get("csv")(SourceConfig(dataset="csv", **flags))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_label_column_lists_classes_met_and_patient_defaults_to_path(tmp_path):
    labels = write(tmp_path / "l.csv", "file,findings\na.png,Mass|Edema\nb.png,\nc.png,Edema\n")
    manifest = load(labels=labels, path_col="file", label_col="findings")
    assert manifest.task == "multilabel" and manifest.classes == ["Edema", "Mass"]
    assert manifest.frame[["Edema", "Mass"]].to_numpy().tolist() == [[1, 1], [0, 0], [1, 0]]
    assert manifest.frame["patient_id"].tolist() == ["a.png", "b.png", "c.png"]


def test_class_cols_with_label_column_fix_the_class_list(tmp_path):
    labels = write(tmp_path / "l.csv", "file,pid,findings\na.png,p1,Mass\nb.png,p1,Tumour\n")
    manifest = load(labels=labels, path_col="file", patient_col="pid", label_col="findings",
                    class_cols=["Mass", "Edema"])
    assert manifest.classes == ["Mass", "Edema"] and manifest.frame["path"].tolist() == ["a.png"]
    assert "unknown finding 'Tumour'" in manifest.skipped.loc[0, "reason"]


def test_class_columns_keep_every_state_and_accept_true_false(tmp_path):
    labels = write(tmp_path / "l.csv", 'file,pid,A,B\n"x, y.png",p1,1,TRUE\nb.png,p2,-1.0,\nc.png,p2,0,false\n'
                                       "d.png,p3,2,1\n")
    manifest = load(labels=labels, path_col="file", patient_col="pid", class_cols=["A", "B"])
    frame = manifest.frame
    assert frame["path"].tolist() == ["x, y.png", "b.png", "c.png"]
    assert frame["A"].tolist() == [1, -1, 0]
    assert frame["B"].isna().tolist() == [False, True, False] and frame["B"].iloc[[0, 2]].tolist() == [1, 0]
    assert manifest.skipped["reason"].tolist() == ["line 5: unknown label value '2' for A"]


@pytest.mark.parametrize("flags, message", [
    ({"path_col": "image", "label_col": "findings"}, "no column 'image'"),
    ({"path_col": "file", "label_col": "labels"}, "no column 'labels'"),
    ({"label_col": "findings"}, "--path-col"),
    ({"path_col": "file"}, "--label-col"),
])
def test_missing_column_or_flag_is_a_user_error_naming_it(tmp_path, flags, message):
    labels = write(tmp_path / "l.csv", "file,findings\na.png,Mass\n")
    with pytest.raises(UserError, match=message) as err:
        load(labels=labels, **flags)
    if "no column" in message:
        assert "l.csv" in str(err.value)


def test_folder_mode_makes_one_class_per_subfolder(tmp_path):
    for relative in ("Normal/a.png", "Normal/deeper/b.png", "Effusion/c.jpg"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / relative), np.zeros((8, 8), np.uint8))
    (tmp_path / "Effusion" / "notes.txt").write_text("not an image")
    manifest = load(images=tmp_path)
    assert manifest.task == "multiclass" and manifest.classes == ["Effusion", "Normal"]
    assert manifest.frame["path"].tolist() == ["Effusion/c.jpg", "Normal/a.png", "Normal/deeper/b.png"]
    assert manifest.frame[["Effusion", "Normal"]].to_numpy().tolist() == [[1, 0], [0, 1], [0, 1]]
