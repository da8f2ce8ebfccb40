"""ClassAUC: per-class AUC from logits of every head, honouring masks; MeanAUC averages them."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxr_tf.training import metrics


def auc_of(metric, y, logits, weight=None):
    metric.update_state(y, logits, sample_weight=weight)
    return float(metric.result())


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 2)) < 0.4).astype("float32")
    logits = (2 * y + rng.normal(0, 1.5, y.shape)).astype("float32")
    return y, logits


def test_multilabel_class_auc_matches_scikit_learn(data):
    y, logits = data
    got = auc_of(metrics.ClassAUC(1, "multilabel", num_thresholds=2000), y, logits)
    assert got == pytest.approx(roc_auc_score(y[:, 1], logits[:, 1]), abs=2e-3)


def test_masked_examples_do_not_count(data):
    y, logits = data
    mask = np.ones_like(y)
    mask[:100, 0] = 0
    got = auc_of(metrics.ClassAUC(0, "multilabel", num_thresholds=2000), y, logits, mask)
    assert got == pytest.approx(roc_auc_score(y[100:, 0], logits[100:, 0]), abs=2e-3)


def test_multilabel3_reads_the_positive_state_of_a_softmax_per_class(data):
    y, logits = data
    one_hot = np.stack([1 - y, y, np.zeros_like(y)], axis=-1)
    three = np.stack([-logits / 2, logits / 2, np.full_like(logits, -5)], axis=-1)
    got = auc_of(metrics.ClassAUC(0, "multilabel3", num_thresholds=2000), one_hot, three)
    assert got == pytest.approx(roc_auc_score(y[:, 0], logits[:, 0]), abs=2e-3)


def test_mean_auc_callback_averages_per_class_values():
    callback = metrics.MeanAUC(["Pleural Effusion", "Edema"])
    logs = {"auc_Pleural_Effusion": 0.8, "auc_Edema": 0.6, "val_auc_Pleural_Effusion": 0.7, "val_auc_Edema": 0.5}
    callback.on_epoch_end(0, logs)
    assert logs["mean_auc"] == pytest.approx(0.7) and logs["val_mean_auc"] == pytest.approx(0.6)


def test_a_class_without_positives_has_no_auc_instead_of_zero():
    y = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], "float32")
    logits = np.array([[2.0, 1.0], [-1.0, 0.0], [1.0, -1.0], [-2.0, 2.0]], "float32")
    assert auc_of(metrics.ClassAUC(0), y, logits) == pytest.approx(1.0)
    assert np.isnan(auc_of(metrics.ClassAUC(1), y, logits))


def test_mean_auc_leaves_out_classes_without_an_auc_and_says_which_once(caplog):
    callback = metrics.MeanAUC(["Cardiomegaly", "Edema", "Fracture"])
    with caplog.at_level(logging.WARNING, logger="cxr_tf"):
        for epoch in range(2):
            logs = {"val_auc_Cardiomegaly": 0.6, "val_auc_Edema": 0.5, "val_auc_Fracture": float("nan")}
            callback.on_epoch_end(epoch, logs)
            assert logs["val_mean_auc"] == pytest.approx(0.55), "not (0.6 + 0.5 + 0) / 3 = 0.37"
    lines = [r.getMessage() for r in caplog.records if "leaves out" in r.getMessage()]
    assert lines == ["val_mean_auc leaves out Fracture: no positive (or no negative) label in the validation data"]
