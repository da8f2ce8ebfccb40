"""Patient-level splits: no patient in two splits, ever; deterministic; fractions and strata kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxr_tf.datasets import splits
from cxr_tf.datasets import DATASETS
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError

METHODS = ["multilabel", "labelset", "random"]


def random_manifest(seed: int, patients: int = 60, classes: int = 4, source: bool = False) -> mf.Manifest:
    """1-5 images per patient, sparse random label states (with blanks), optional official split."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 6, size=patients)
    patient = np.repeat([f"p{i}" for i in range(patients)], counts)
    names = [f"c{k}" for k in range(classes)]
    states = rng.choice([1, 0, 0, 0, -1, None], size=(len(patient), classes))
    frame = pd.DataFrame({
        "path": [f"{p}/{i}.png" for i, p in enumerate(patient)], "patient_id": patient, "view": "frontal",
        "projection": "", "boxes": "[]",
        "source_split": rng.choice(["train", "val", "test"], size=len(patient)) if source else "",
        **{n: pd.array(states[:, k], dtype="Int8") for k, n in enumerate(names)},
    })
    return mf.Manifest("csv", "multilabel", names, frame)


@pytest.mark.parametrize("method", METHODS + ["source"])
@pytest.mark.parametrize("seed", range(8))
def test_no_patient_is_ever_in_two_splits(method, seed):
    manifest = random_manifest(seed, source=True)
    frame = splits.assign_splits(manifest, method, val=0.1, test=0.2, seed=seed).frame
    assert set(frame["split"]) <= set(splits.SPLITS)
    assert (frame.groupby("patient_id")["split"].nunique() == 1).all()


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_split_and_other_seed_another(method):
    manifest = random_manifest(0, patients=200)
    first = splits.assign_splits(manifest, method, val=0.1, test=0.2, seed=3).frame["split"]
    again = splits.assign_splits(manifest, method, val=0.1, test=0.2, seed=3).frame["split"]
    other = splits.assign_splits(manifest, method, val=0.1, test=0.2, seed=4).frame["split"]
    assert first.tolist() == again.tolist() and first.tolist() != other.tolist()


@pytest.mark.parametrize("method", ["multilabel", "random"])
def test_patient_shares_follow_the_fractions(method):
    frame = splits.assign_splits(random_manifest(1, patients=500), method, val=0.1, test=0.2, seed=0).frame
    share = frame.groupby("patient_id")["split"].first().value_counts(normalize=True)
    assert share["test"] == pytest.approx(0.2, abs=0.02) and share["val"] == pytest.approx(0.1, abs=0.02)


def test_multilabel_keeps_each_class_prevalence_in_every_split(fixtures):
    cfg = SourceConfig(dataset="nih", labels=fixtures / "labels" / "Data_Entry_2017_v2020.csv")
    manifest = splits.assign_splits(DATASETS.get("nih")(cfg), "multilabel", val=0.0, test=0.3, seed=0,
                                    classes=["Effusion", "Infiltration"])
    union = (manifest.frame[["Effusion", "Infiltration"]] == 1).groupby(
        [manifest.frame["patient_id"], manifest.frame["split"]]).any().groupby(level="split").mean()
    assert set(manifest.frame["split"]) == {"train", "test"}
    assert (union.loc["train"] - union.loc["test"]).abs().max() < 0.05


def test_labelset_cuts_every_label_combination_by_the_fractions():
    manifest = random_manifest(2, patients=400, classes=2)
    frame = splits.assign_splits(manifest, "labelset", val=0.0, test=0.25, seed=0).frame
    per_patient = (frame[["c0", "c1"]] == 1).groupby(frame["patient_id"]).any()
    per_patient["split"] = frame.groupby("patient_id")["split"].first()
    test_share = per_patient.groupby(["c0", "c1"])["split"].apply(lambda s: (s == "test").mean())
    assert len(test_share) == 4 and (test_share - 0.25).abs().max() < 0.02


def test_source_puts_a_patient_in_several_official_splits_into_the_most_held_out():
    manifest = random_manifest(1, patients=3)
    assert (manifest.frame["patient_id"] == "p1").sum() > 1
    manifest.frame["source_split"] = "train"
    first_of_p1 = manifest.frame.index[manifest.frame["patient_id"] == "p1"][0]
    manifest.frame.loc[first_of_p1, "source_split"] = "val"
    frame = splits.assign_splits(manifest, "source", val=None, test=0.2, seed=0).frame
    assert frame.groupby("patient_id")["split"].first().to_dict() == {"p0": "train", "p1": "val", "p2": "train"}


@pytest.mark.parametrize("official, expected", [(["train", "test"], "source"), (["train", "val"], "multilabel")])
def test_auto_uses_the_official_split_only_when_it_has_train_and_test(official, expected):
    manifest = random_manifest(5, patients=40)
    by_patient = {p: official[i % 2] for i, p in enumerate(sorted(set(manifest.frame["patient_id"])))}
    manifest.frame["source_split"] = manifest.frame["patient_id"].map(by_patient)
    auto = splits.assign_splits(manifest, "auto", val=0.1, test=0.2, seed=0).frame["split"]
    chosen = splits.assign_splits(manifest, expected, val=0.1, test=0.2, seed=0).frame["split"]
    assert auto.tolist() == chosen.tolist()


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "random", "val": 0.5, "test": 0.5}, "sum below 1"),
    ({"method": "multilabl", "val": 0.1, "test": 0.2}, "did you mean"),
    ({"method": "source", "val": 0.1, "test": 0.2}, "no official split"),
    ({"method": "random", "val": 0.1, "test": 0.2, "classes": ["nope"]}, "--split-classes"),
])
def test_bad_split_requests_are_user_errors(kwargs, message):
    method = kwargs.pop("method")
    with pytest.raises(UserError, match=message):
        splits.assign_splits(random_manifest(0), method, seed=0, **kwargs)


def test_split_table_counts_rows_patients_and_prevalence():
    manifest = splits.assign_splits(random_manifest(3), "random", val=0.1, test=0.2, seed=0)
    table = splits.split_table(manifest)
    assert list(table) == ["train", "val", "test"]
    assert sum(t["rows"] for t in table.values()) == len(manifest)
    assert sum(t["patients"] for t in table.values()) == manifest.frame["patient_id"].nunique()
    test_rows = manifest.frame[manifest.frame["split"] == "test"]
    assert table["test"]["prevalence"]["c0"] == pytest.approx((test_rows["c0"] == 1).fillna(False).mean(), abs=1e-4)
    text = splits.format_split_table(manifest)
    assert "patients" in text and "c3" in text


def chexpert_like(states: dict[str, list]) -> mf.Manifest:
    """One image per patient; every CheXpert class blank except ``states`` (class -> state per patient)."""
    classes = ["Enlarged Cardiomediastinum", "Cardiomegaly", "Consolidation", "Pneumonia", "Edema"]
    n = len(next(iter(states.values())))
    frame = pd.DataFrame({"path": [f"p{i}.jpg" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "view": "frontal", "projection": "", "boxes": "[]", "source_split": "",
                          **{c: pd.array(states.get(c, [None] * n), dtype="Int8") for c in classes}})
    return mf.Manifest("chexpert", "multilabel", classes, frame,
                       label_tree={"Cardiomegaly": "Enlarged Cardiomediastinum", "Pneumonia": "Consolidation"})


def test_labelset_can_split_on_s1s_processed_labels_u_ones_after_the_label_tree():
    # Consolidation blank but Pneumonia uncertain: S1's processing makes Consolidation positive.
    manifest = chexpert_like({"Pneumonia": [-1, None, 1, 0], "Cardiomegaly": [None, -1, 0, 1]})
    chosen = ["Cardiomegaly", "Consolidation"]
    raw = splits.positive_labels(manifest, chosen)
    processed = splits.positive_labels(manifest, chosen, uncertainty="ones", propagate_parents="uncertain")
    assert raw.to_numpy().tolist() == [[False, False], [False, False], [False, False], [True, False]]
    assert processed.to_numpy().tolist() == [[False, True], [True, False], [False, True], [True, False]]


def test_labelset_on_processed_labels_cuts_each_processed_combination():
    # 10 patients whose only finding is an uncertain Pneumonia: raw, they join the 10 all-negative patients
    # (one group of 20); processed, they are their own Consolidation group, cut 80/20 like the others.
    manifest = chexpert_like({"Pneumonia": [-1] * 10 + [0] * 10})
    frame = splits.assign_splits(manifest, "labelset", val=0.0, test=0.2, seed=0, classes=["Consolidation"],
                                 uncertainty="ones", propagate_parents="uncertain").frame
    assert (frame["split"][:10] == "test").sum() == 2 and (frame["split"][10:] == "test").sum() == 2
