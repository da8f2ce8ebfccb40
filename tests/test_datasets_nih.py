"""NIH ChestX-ray14 adapter on real label rows (tests/fixtures/labels) and tiny generated files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from cxr_tf.datasets import DATASETS, catalog
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels"
HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
          "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")


def load(labels: Path, **flags) -> object:
    return DATASETS.get("nih")(SourceConfig(dataset="nih", labels=labels, **flags))


def write_entries(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def entry(name: str, findings: str = "No Finding", patient: int = 1, view: str = "PA") -> str:
    return f"{name},{findings},0,{patient},50,M,{view},2500,2048,0.14,0.14"


def test_real_rows_become_fourteen_binary_findings_and_no_finding(fixtures):
    manifest = load(fixtures / "labels" / "Data_Entry_2017_v2020.csv")
    raw = pd.read_csv(fixtures / "labels" / "Data_Entry_2017_v2020.csv", usecols=[0, 1, 3, 6],
                      names=["image", "findings", "patient", "view"], header=0)
    assert manifest.classes == catalog.entry("nih").classes and len(manifest.classes) == 15
    assert len(manifest) == len(raw) == 200 and len(manifest.skipped) == 0
    assert manifest.frame["patient_id"].nunique() == raw["patient"].nunique()
    assert set(manifest.states().to_numpy().ravel()) == {0, 1}
    no_finding = (raw["findings"] == "No Finding").to_numpy()
    findings = manifest.frame[manifest.classes[:14]].to_numpy()
    assert (findings[no_finding] == 0).all()
    assert (manifest.frame["No Finding"].to_numpy() == no_finding).all()
    first = manifest.frame.iloc[0]
    assert (first["path"], first["patient_id"], first["view"], first["projection"]) == \
        ("00000001_000.png", "1", "frontal", "PA")
    assert first["Cardiomegaly"] == 1 and first["Emphysema"] == 0


def test_sex_and_age_come_from_the_patient_columns(fixtures):
    manifest = load(fixtures / "labels" / "Data_Entry_2017_v2020.csv")
    raw = pd.read_csv(fixtures / "labels" / "Data_Entry_2017_v2020.csv", usecols=[4, 5], names=["age", "sex"],
                      header=0)
    assert manifest.frame["sex"].tolist() == raw["sex"].tolist()
    assert manifest.frame["age"].tolist() == raw["age"].astype(str).tolist()
    assert (manifest.frame.iloc[0]["sex"], manifest.frame.iloc[0]["age"]) == ("M", "57")


def test_quoted_header_with_nine_names_reads_eleven_field_rows(tmp_path):
    header = HEADER.replace("OriginalImage[Width,Height]", '"OriginalImage[Width,Height]"').replace(
        "OriginalImagePixelSpacing[x,y]", '"OriginalImagePixelSpacing[x,y]"')
    manifest = load(write_entries(tmp_path / "d.csv", [entry("a.png", "Mass|Nodule")], header))
    assert manifest.frame.loc[0, ["Mass", "Nodule", "Hernia"]].tolist() == [1, 1, 0]


@pytest.mark.parametrize("bad_row, reason", [
    (entry("bad.png") + ",extra", "malformed row"),
    ("bad.png,Mass", "malformed row"),
    (entry("bad.png", "Mass|Lung Cancer"), "unknown finding 'Lung Cancer'"),
    (entry("../bad.png"), "unsafe path"),
    (entry("good1.png", "Hernia"), "duplicate path"),
])
def test_unusable_row_is_skipped_with_reason_and_good_rows_kept(tmp_path, bad_row, reason):
    rows = [entry("good1.png", "Mass", 1), bad_row, entry("good2.png", "Effusion", 2)]
    manifest = load(write_entries(tmp_path / "d.csv", rows))
    assert manifest.frame["path"].tolist() == ["good1.png", "good2.png"]
    assert manifest.frame.loc[0, "Mass"] == 1 and manifest.frame.loc[0, "Hernia"] == 0
    assert len(manifest.skipped) == 1
    assert reason in manifest.skipped.loc[0, "reason"]


def test_gzipped_labels_read_like_plain(tmp_path):
    rows = [entry("a.png", "Edema", 7)]
    plain = write_entries(tmp_path / "d.csv", rows)
    zipped = tmp_path / "d.csv.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    pd.testing.assert_frame_equal(load(zipped).frame, load(plain).frame)


def test_boxes_are_joined_and_infiltrate_means_infiltration(fixtures):
    labels = fixtures / "labels"
    manifest = load(labels / "Data_Entry_2017_v2020.csv", bbox=labels / "BBox_List_2017.csv")
    boxed = manifest.frame[manifest.frame["boxes"] != "[]"]
    bbox_rows = pd.read_csv(labels / "BBox_List_2017.csv").iloc[:, :2]
    assert set(boxed["path"]) == set(bbox_rows.iloc[:, 0])
    names = {box[0] for boxes in boxed["boxes"] for box in json.loads(boxes)}
    assert "Infiltration" in names and "Infiltrate" not in names and names <= set(manifest.classes)
    first = bbox_rows.iloc[0, 0]
    box = json.loads(boxed.set_index("path").loc[first, "boxes"])[0]
    assert len(box) == 5 and all(isinstance(v, float) for v in box[1:])


def test_images_are_found_anywhere_below_root_and_missing_files_skipped(tmp_path):
    for relative in ("images_001/images/a.png", "images_002/images/b.png"):
        (tmp_path / "nih" / relative).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "nih" / relative), np.zeros((8, 8), np.uint8))
    labels = write_entries(tmp_path / "d.csv", [entry("a.png"), entry("b.png", patient=2), entry("c.png")])
    manifest = load(labels, images=tmp_path / "nih")
    assert manifest.frame["path"].tolist() == ["images_001/images/a.png", "images_002/images/b.png"]
    assert manifest.image_root == tmp_path / "nih"
    assert manifest.skipped["path"].tolist() == ["c.png"]
    assert manifest.skipped.loc[0, "reason"].startswith("missing file")


@pytest.mark.parametrize("labels, message", [
    ("chexpert_train.csv", "no column 'Image Index'"),
    ("nowhere.csv", "no such file"),
])
def test_wrong_label_file_is_one_line_user_error(fixtures, labels, message):
    with pytest.raises(UserError, match=message):
        load(fixtures / "labels" / labels)


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/labels")
def test_full_file_has_every_row_and_patient():
    manifest = load(SHARED / "Data_Entry_2017_v2020.csv.gz", bbox=SHARED / "BBox_List_2017.csv.gz")
    assert len(manifest) == 112_120 and manifest.frame["patient_id"].nunique() == 30_805
    assert len(manifest.skipped) == 0
    assert (manifest.frame["boxes"] != "[]").sum() == 880  # images with at least one of the 984 boxes


def test_test_list_makes_the_official_test_split_and_the_rest_train(tmp_path):
    labels = write_entries(tmp_path / "entries.csv", [entry("a.png", patient=1), entry("b.png", patient=2),
                                                      entry("c.png", patient=3)])
    (tmp_path / "test_list.txt").write_text("b.png\nc.png\n")
    frame = load(labels, test_list=tmp_path / "test_list.txt").frame
    assert frame.set_index("path")["source_split"].to_dict() == {"a.png": "train", "b.png": "test", "c.png": "test"}
    with pytest.raises(UserError, match="--test-list .*missing.txt"):
        load(labels, test_list=tmp_path / "missing.txt")
