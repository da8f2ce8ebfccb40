"""Output styles: real sources' paths, headers and label states."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cxr_tf.datasets import catalog
from cxr_tf.phantoms import writers
from cxr_tf.phantoms.generate import ImageSpec


def _spec(findings=(), labels=None, holdout=False, index=0, patient=1, followup=0) -> ImageSpec:
    return ImageSpec(index=index, patient=patient, followup=followup, age=61, sex="F", projection="PA",
                     findings=tuple(findings), labels=tuple(findings if labels is None else labels), holdout=holdout)


@pytest.mark.parametrize("style, path", [
    ("nih", "images_001/images/00000012_002.png"),
    ("chexpert", "CheXpert-v1.0-small/train/patient00012/study3/view1_frontal.png"),
    ("folders", "Effusion/00000012_002.png"),
])
def test_style_paths_follow_the_real_layouts(style, path):
    spec = _spec(["Effusion"], patient=12, followup=2)
    assert writers.STYLES.get(style).path(spec) == path


def test_nih_images_spread_over_folders_of_ten_thousand():
    assert writers.STYLES.get("nih").path(_spec(index=10_000)).startswith("images_002/images/")


def test_nih_label_files_have_the_real_headers_and_spellings(tmp_path):
    specs = [_spec(["Cardiomegaly", "Infiltration"]), _spec(index=1, patient=2)]
    boxes = {0: {"Cardiomegaly": [(10, 20, 30, 40)], "Infiltration": [(1, 2, 3, 4), (5, 6, 7, 8)]}, 1: {}}
    entry, bbox = writers.STYLES.get("nih").write_labels(tmp_path, specs, boxes, writers.LabelOptions(size=64, seed=0))
    assert entry.read_text().splitlines() == [
        writers.NIH_HEADER,
        "00000001_000.png,Cardiomegaly|Infiltration,0,1,61,F,PA,64,64,6.094,6.094",
        "00000002_000.png,No Finding,0,2,61,F,PA,64,64,6.094,6.094",
    ]
    assert bbox.read_text().splitlines() == [
        "Image Index,Finding Label,Bbox [x,y,w,h],,,",
        "00000001_000.png,Cardiomegaly,10,20,30,40",
        "00000001_000.png,Infiltrate,1,2,3,4",
        "00000001_000.png,Infiltrate,5,6,7,8",
    ]


def test_nih_writes_no_box_for_a_finding_the_report_missed(tmp_path):
    specs = [_spec(["Effusion"], labels=[])]
    _, bbox = writers.STYLES.get("nih").write_labels(tmp_path, specs, {0: {"Effusion": [(1, 1, 5, 5)]}},
                                                     writers.LabelOptions(size=64, seed=0))
    assert bbox.read_text().splitlines() == [writers.NIH_BOX_HEADER]


def _states(spec, uncertain=0.0, blank=0.0):
    return writers.chexpert_states(spec, np.random.default_rng(0), uncertain, blank)


@pytest.mark.parametrize("finding, parent", [("Cardiomegaly", "Enlarged Cardiomediastinum"),
                                             ("Edema", "Lung Opacity"), ("Consolidation", "Lung Opacity"),
                                             ("Atelectasis", "Lung Opacity"), ("Nodule", "Lung Opacity"),
                                             ("Pneumonia", "Consolidation"), ("Pneumonia", "Lung Opacity")])
@pytest.mark.parametrize("uncertain", [0.0, 1.0])
def test_chexpert_parents_are_at_least_as_certain_as_their_children(finding, parent, uncertain):
    states = _states(_spec([finding]), uncertain=uncertain)
    child = writers.CHEXPERT_NAMES[finding]
    assert states[child] == ("-1.0" if uncertain else "1.0")
    assert states[parent] == states[child]
    assert states["No Finding"] == ""


def test_chexpert_columns_and_label_tree_are_the_catalogs_with_the_deepest_child_raised_first():
    entry = catalog.entry("chexpert")
    assert writers.CHEXPERT_HEADER.split(",")[5:] == entry.classes
    assert writers.CHEXPERT_PARENTS == entry.label_tree
    # Pneumonia -> Consolidation -> Lung Opacity: raising Consolidation first lets it raise Lung Opacity.
    assert next(iter(writers.CHEXPERT_PARENTS)) == "Pneumonia" and next(iter(entry.label_tree)) != "Pneumonia"


@pytest.mark.parametrize("blank", [0.0, 0.3, 1.0])
def test_chexpert_negatives_are_blank_at_the_requested_rate(blank):
    rng = np.random.default_rng(1)
    states = [writers.chexpert_states(_spec(), rng, 0.0, blank) for _ in range(200)]
    negatives = [s[c] for s in states for c in writers.CHEXPERT_COLUMNS[1:]]
    assert set(negatives) <= {"", "0.0"}
    assert negatives.count("") / len(negatives) == pytest.approx(blank, abs=0.03)
    assert {s["No Finding"] for s in states} == {"1.0"}


def test_chexpert_valid_rows_are_consensus_zero_or_one():
    spec = _spec(["Effusion"], labels=[], holdout=True)
    states = _states(spec, uncertain=1.0, blank=1.0)
    assert set(states.values()) == {"0.0", "1.0"}
    assert states["Pleural Effusion"] == "1.0" and states["No Finding"] == "0.0"


def test_chexpert_rows_go_to_train_or_valid(tmp_path):
    specs = [_spec(["Mass"]), _spec(index=1, patient=2, holdout=True)]
    train, valid = writers.STYLES.get("chexpert").write_labels(tmp_path, specs, {0: {}, 1: {}},
                                                               writers.LabelOptions(size=64, seed=0))
    assert train.parent == valid.parent == tmp_path / "CheXpert-v1.0-small"
    train_rows, valid_rows = train.read_text().splitlines(), valid.read_text().splitlines()
    assert train_rows[0] == valid_rows[0] == writers.CHEXPERT_HEADER
    assert train_rows[1].startswith("CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.png,Female,61,"
                                    "Frontal,PA,")
    assert valid_rows[1].startswith("CheXpert-v1.0-small/valid/patient00002/study1/")
    assert len(train_rows[1].split(",")) == len(writers.CHEXPERT_HEADER.split(","))


def test_folder_class_is_the_reported_finding_or_normal():
    assert writers.folder_class(_spec(["Pneumothorax"])) == "Pneumothorax"
    assert writers.folder_class(_spec(["Pneumothorax"], labels=[])) == writers.NORMAL


def test_png_is_written_whole_under_its_final_name(tmp_path):
    image = (np.arange(48 * 48) % 256).astype(np.uint8).reshape(48, 48)
    path = tmp_path / "a" / "b.png"
    writers.write_png(path, image)
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), image)
    assert [p.name for p in path.parent.iterdir()] == ["b.png"]
