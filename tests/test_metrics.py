"""Run metrics: scikit-learn's values, thresholds chosen as documented, masks honoured, CIs bracket."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from cxr_tf.errors import UserError
from cxr_tf.evaluation import metrics


@pytest.fixture
def multilabel():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 3)) < [0.2, 0.4, 0.5]).astype(int)
    prob = np.clip(0.35 * y + rng.normal(0.35, 0.18, y.shape), 0, 1)
    return y, prob, rng.integers(0, 100, 300)


def test_per_class_values_equal_scikit_learn(multilabel):
    y, prob, patients = multilabel
    out = metrics.multilabel_metrics(y, prob, patients, ["a", "b", "c"], np.full(3, 0.5), resamples=200)
    for k, name in enumerate("abc"):
        got = out["classes"][name]
        assert got["auc"] == pytest.approx(skm.roc_auc_score(y[:, k], prob[:, k]), abs=1e-6)
        assert got["ap"] == pytest.approx(skm.average_precision_score(y[:, k], prob[:, k]), abs=1e-6)
        pred = prob[:, k] >= 0.5
        assert got["sensitivity"] == pytest.approx(skm.recall_score(y[:, k], pred), abs=1e-6)
        assert got["specificity"] == pytest.approx(skm.recall_score(1 - y[:, k], ~pred), abs=1e-6)
        assert got["ppv"] == pytest.approx(skm.precision_score(y[:, k], pred), abs=1e-6)
        assert got["f1"] == pytest.approx(skm.f1_score(y[:, k], pred), abs=1e-6)
        assert sum(map(sum, got["confusion"])) == len(y)
        low, high = got["auc_ci"]
        assert low < got["auc"] < high
        for rate in ("sensitivity", "specificity", "ppv", "npv", "f1"):
            low, high = got[f"{rate}_ci"]
            assert low <= got[rate] <= high
        assert got["bootstrap_dropped"] == 0
    assert out["mean_auc"] == pytest.approx(np.mean([out["classes"][c]["auc"] for c in "abc"]))
    assert out["mean_auc_ci"][0] < out["mean_auc"] < out["mean_auc_ci"][1]
    assert out["micro"]["f1"] == pytest.approx(skm.f1_score(y, prob >= 0.5, average="micro"), abs=1e-6)


def test_masked_labels_are_left_out_of_a_class(multilabel):
    y, prob, patients = multilabel
    mask = np.ones_like(y)
    mask[:100, 0] = 0
    out = metrics.multilabel_metrics(y, prob, patients, ["a", "b", "c"], np.full(3, 0.5), mask=mask,
                                     resamples=0)
    assert out["classes"]["a"]["n"] == 200
    assert out["classes"]["a"]["auc"] == pytest.approx(skm.roc_auc_score(y[100:, 0], prob[100:, 0]))


def test_youden_threshold_maximises_tpr_minus_fpr_and_f1_threshold_maximises_f1(multilabel):
    y, prob, _ = multilabel
    youden = metrics.choose_thresholds(y, prob, "youden")
    f1 = metrics.choose_thresholds(y, prob, "f1")
    grid = np.unique(prob[:, 1])
    j = [((prob[:, 1] >= t) & (y[:, 1] == 1)).sum() / y[:, 1].sum()
         - ((prob[:, 1] >= t) & (y[:, 1] == 0)).sum() / (1 - y[:, 1]).sum() for t in grid]
    assert youden[1] == pytest.approx(grid[int(np.argmax(j))])
    f1s = [skm.f1_score(y[:, 1], prob[:, 1] >= t) for t in grid]
    assert skm.f1_score(y[:, 1], prob[:, 1] >= f1[1]) == pytest.approx(max(f1s))
    assert (metrics.choose_thresholds(y, prob, 0.3) == 0.3).all()
    with pytest.raises(UserError, match="youden"):
        metrics.choose_thresholds(y, prob, "best")


def test_multiclass_accuracy_confusion_and_macro_f1_equal_scikit_learn():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 3, 200)
    prob = rng.dirichlet(np.ones(3), 200) + np.eye(3)[true] * 0.5
    prob /= prob.sum(axis=1, keepdims=True)
    out = metrics.multiclass_metrics(np.eye(3)[true], prob, np.arange(200), ["n", "b", "v"], resamples=100)
    pred = prob.argmax(axis=1)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(true, pred))
    assert out["confusion"] == skm.confusion_matrix(true, pred).tolist()
    assert out["macro"]["f1"] == pytest.approx(skm.f1_score(true, pred, average="macro"), abs=1e-6)
    assert out["classes"]["b"]["recall"] == pytest.approx(skm.recall_score(true == 1, pred == 1))
