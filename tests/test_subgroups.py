"""Subgroups: counts equal a pandas groupby, small cells say so instead of an AUC, and records carry sex
and age (records written before those features existed still read, as unknown)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cxr_tf.evaluation import subgroups


@pytest.fixture
def predictions() -> pd.DataFrame:
    """A predictions.csv table: 400 images of 250 patients, two classes, one with masked labels."""
    rng = np.random.default_rng(0)
    n = 400
    y = (rng.random((n, 2)) < [0.3, 0.05]).astype(float)
    y[:30, 1] = np.nan
    age = rng.integers(1, 95, n).astype(float)
    age[:7] = np.nan
    return pd.DataFrame({
        "path": [f"img{i}.png" for i in range(n)], "patient": [f"p{i % 250}" for i in range(n)],
        "view": rng.choice(["frontal", "lateral"], n, p=[0.8, 0.2]), "projection": rng.choice(["PA", "AP", ""], n),
        "sex": rng.choice(["M", "F"], n), "age": pd.array(age, dtype="Int64"),
        "label_a": pd.array(y[:, 0], dtype="Int64"),
        "prob_a": np.clip(0.4 * np.nan_to_num(y[:, 0]) + rng.random(n) * 0.6, 0, 1),
        "label_b": pd.array(y[:, 1], dtype="Int64"), "prob_b": rng.random(n),
    })


def test_subgroup_counts_equal_a_pandas_groupby(predictions):
    out = subgroups.subgroup_metrics(predictions, ["a", "b"], resamples=0, seed=0)
    bands = pd.cut(predictions["age"].astype(float), [0, 18, 40, 60, 80, 200], right=False,
                   labels=["0-17", "18-39", "40-59", "60-79", "80+"]).astype(object).fillna("not recorded")
    keyed = {"view": predictions["view"], "projection": predictions["projection"].replace("", "not recorded"),
             "sex": predictions["sex"], "age band": bands}
    assert list(out["attributes"]) == list(keyed)
    for attribute, key in keyed.items():
        grouped = predictions.groupby(key.to_numpy())
        table = out["attributes"][attribute]
        assert {k: v["n"] for k, v in table.items()} == grouped.size().to_dict()
        assert {k: v["patients"] for k, v in table.items()} == grouped["patient"].nunique().to_dict()
        for c in ("a", "b"):
            assert {k: v["classes"][c]["n"] for k, v in table.items()} == grouped[f"label_{c}"].count().to_dict()
            assert {k: v["classes"][c]["positives"] for k, v in table.items()} == \
                grouped[f"label_{c}"].sum().astype(int).to_dict()


def test_a_cell_with_too_few_positives_gives_a_note_instead_of_an_auc(predictions):
    out = subgroups.subgroup_metrics(predictions, ["a", "b"], resamples=50, seed=0)
    male = out["attributes"]["sex"]["M"]["classes"]
    assert male["b"]["positives"] < subgroups.MIN_POSITIVES
    assert male["b"]["auc"] is None and male["b"]["note"].startswith("too few positives")
    rows = predictions[(predictions["sex"] == "M") & predictions["label_a"].notna()]
    assert male["a"]["auc"] == pytest.approx(roc_auc_score(rows["label_a"].astype(int), rows["prob_a"]))
    low, high = male["a"]["auc_ci"]
    assert low <= male["a"]["auc"] <= high and male["a"]["note"] is None


def test_attributes_the_source_does_not_record_are_left_out(predictions):
    frame = predictions.assign(sex="", age=pd.array([pd.NA] * len(predictions), dtype="Int64"))
    assert list(subgroups.subgroup_metrics(frame, ["a"], resamples=0, seed=0)["attributes"]) == ["view", "projection"]


def test_records_carry_sex_and_age_and_older_records_read_as_unknown():
    import tensorflow as tf

    from cxr_tf.records import features

    record = features.Record(image=b"", image_format="png", height=1, width=1, original_height=1,
                             original_width=1, path="a.png", patient_id="p", view="frontal", projection="AP",
                             states=[1], sex="F", age=71)
    spec = features.feature_spec(1)
    parsed = tf.io.parse_single_example(features.serialize(record), spec)
    assert (parsed[features.SEX_KEY].numpy(), int(parsed[features.AGE_KEY])) == (b"F", 71)
    example = tf.train.Example.FromString(features.serialize(record))
    del example.features.feature[features.SEX_KEY]
    del example.features.feature[features.AGE_KEY]
    parsed = tf.io.parse_single_example(example.SerializeToString(), spec)
    assert (parsed[features.SEX_KEY].numpy(), int(parsed[features.AGE_KEY])) == (b"", features.UNKNOWN_AGE)
