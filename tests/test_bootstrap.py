"""The vectorised bootstrap equals scikit-learn resample by resample and resamples whole patients."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from cxr_tf.evaluation import bootstrap


@pytest.fixture
def predictions():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.random(n) < 0.3
    # Rounded scores create many ties, the hard case for rank-based formulas.
    score = np.round(np.clip(0.3 * y + rng.normal(0.4, 0.2, n), 0, 1), 2)
    patients = rng.integers(0, 120, n)
    return y.astype(int), score, patients


def test_weighted_auc_and_ap_match_scikit_learn_for_every_resample(predictions):
    y, score, patients = predictions
    weights = next(bootstrap.patient_weights(patients, resamples=20, seed=0))
    aucs = bootstrap.weighted_auc(y, score, weights)
    aps = bootstrap.weighted_average_precision(y, score, weights)
    for r in range(20):
        assert aucs[r] == pytest.approx(roc_auc_score(y, score, sample_weight=weights[r]), abs=1e-9)
        keep = weights[r] > 0
        expected_ap = average_precision_score(y[keep], score[keep], sample_weight=weights[r][keep])
        assert aps[r] == pytest.approx(expected_ap, abs=1e-9)


def test_unit_weights_give_the_plain_metrics(predictions):
    y, score, _ = predictions
    ones = np.ones((1, len(y)))
    assert bootstrap.weighted_auc(y, score, ones)[0] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert bootstrap.weighted_average_precision(y, score, ones)[0] == pytest.approx(
        average_precision_score(y, score), abs=1e-12)


def test_patient_weights_draw_whole_patients():
    patients = np.array(["a", "a", "a", "b", "c", "c"])
    weights = np.concatenate(list(bootstrap.patient_weights(patients, resamples=150, seed=3)))
    assert weights.shape == (150, 6)
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 1] == weights[:, 2]).all()
    assert (weights[:, 4] == weights[:, 5]).all()
    # Every resample draws as many patients as there are.
    assert (weights[:, [0, 3, 4]].sum(axis=1) == 3).all()


def test_resample_without_positives_is_nan_and_ignored_by_the_interval():
    y = np.array([1, 0, 0, 0])
    weights = np.array([[0.0, 1, 1, 1], [1.0, 1, 1, 1]])
    aucs = bootstrap.weighted_auc(y, np.array([0.9, 0.1, 0.2, 0.3]), weights)
    assert np.isnan(aucs[0]) and aucs[1] == 1.0
    assert bootstrap.confidence_interval(aucs) == (1.0, 1.0)


def test_bootstrap_gives_per_class_draws_and_is_reproducible(predictions):
    y, score, patients = predictions
    y2, scores = np.stack([y, 1 - y], axis=1), np.stack([score, -score], axis=1)
    first = bootstrap.bootstrap(y2, scores, patients, resamples=100, seed=7)
    assert first["auc"].shape == first["ap"].shape == (100, 2)
    # Flipping labels and scores together keeps the AUC of every draw.
    np.testing.assert_allclose(first["auc"][:, 0], first["auc"][:, 1], atol=1e-12)
    again = bootstrap.bootstrap(y2, scores, patients, resamples=100, seed=7)
    np.testing.assert_array_equal(first["auc"], again["auc"])
    low, high = bootstrap.confidence_interval(first["auc"][:, 0])
    assert low < roc_auc_score(y, score) < high
