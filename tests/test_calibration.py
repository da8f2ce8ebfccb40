"""Calibration: Brier and equal-count ECE equal hand-computed values and scikit-learn's calibration_curve;
temperature and Platt scaling recover a known miscalibration without changing the ranking."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from cxr_tf.evaluation import calibration


def test_brier_and_ece_equal_hand_computed_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    # Brier: (0.1^2 + 0.4^2 + 0.65^2 + 0.2^2) / 4 = 0.6325 / 4.
    assert calibration.brier(y, p) == pytest.approx(0.158125, abs=1e-12)
    # Two equal-count bins split at the median 0.375: {0.1, 0.35} (mean 0.225, 1 positive of 2) and
    # {0.4, 0.8} (mean 0.6, 1 of 2): ECE = 0.5 * |0.5 - 0.225| + 0.5 * |0.5 - 0.6| = 0.1875.
    curve = calibration.reliability(y, p, bins=2)
    np.testing.assert_allclose(curve.mean_prob, [0.225, 0.6])
    np.testing.assert_allclose(curve.frac_pos, [0.5, 0.5])
    np.testing.assert_array_equal(curve.count, [2, 2])
    assert curve.ece == pytest.approx(0.1875, abs=1e-12)


@pytest.mark.parametrize("bins", [5, 10, 15])
def test_reliability_curve_equals_scikit_learn_quantile_calibration_curve(bins):
    rng = np.random.default_rng(0)
    n = 1500  # divisible by every bins value: equal-count bins of n / bins distinct probabilities
    p = rng.beta(0.7, 2.0, n)
    y = (rng.random(n) < p ** 0.7).astype(int)
    frac_pos, mean_prob = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    curve = calibration.reliability(y, p, bins)
    np.testing.assert_allclose(curve.frac_pos, frac_pos, atol=1e-12)
    np.testing.assert_allclose(curve.mean_prob, mean_prob, atol=1e-12)
    np.testing.assert_array_equal(curve.count, np.full(bins, n // bins))
    assert curve.ece == pytest.approx(np.mean(np.abs(frac_pos - mean_prob)), abs=1e-12)


def overconfident(n: int, slope: float, intercept: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(z) and a model reporting sigmoid(slope * z + intercept) instead."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(int)
    return y, 1.0 / (1.0 + np.exp(-(slope * z + intercept)))


def test_temperature_scaling_recovers_the_temperature_and_keeps_the_auc():
    y, p = overconfident(20_000, slope=3.0, intercept=0.0)
    fitted = calibration.fit(y[:, None], p[:, None], "temperature", "multilabel", ["a"])
    assert fitted["classes"]["a"]["slope"] == pytest.approx(1 / 3, abs=0.03)
    assert fitted["classes"]["a"]["intercept"] == 0.0
    scaled = calibration.apply_numpy(p[:, None], fitted, ["a"])[:, 0]
    assert calibration.reliability(y, scaled).ece < 0.5 * calibration.reliability(y, p).ece
    assert roc_auc_score(y, scaled) == pytest.approx(roc_auc_score(y, p), abs=1e-6)


def test_platt_scaling_recovers_slope_and_intercept():
    y, p = overconfident(20_000, slope=2.0, intercept=-1.0, seed=1)
    fitted = calibration.fit(y[:, None], p[:, None], "platt", "multilabel", ["a"])
    # sigmoid(a * (2z - 1) + b) = sigmoid(z) for a = 0.5, b = 0.5.
    assert fitted["classes"]["a"]["slope"] == pytest.approx(0.5, abs=0.05)
    assert fitted["classes"]["a"]["intercept"] == pytest.approx(0.5, abs=0.07)


def test_masked_labels_are_left_out_of_the_fit_and_a_one_label_class_keeps_the_identity():
    y, p = overconfident(5000, slope=3.0, intercept=0.0, seed=2)
    mask = np.ones((5000, 2), bool)
    mask[:2500, 0] = False
    labels = np.stack([y, np.zeros_like(y)], axis=1)
    probs = np.stack([p, p], axis=1)
    with_mask = calibration.fit(labels, probs, "temperature", "multilabel", ["a", "b"], mask=mask)
    half = calibration.fit(y[2500:, None], p[2500:, None], "temperature", "multilabel", ["a"])
    assert with_mask["classes"]["a"]["slope"] == pytest.approx(half["classes"]["a"]["slope"], rel=1e-6)
    assert with_mask["classes"]["b"] == {"slope": 1.0, "intercept": 0.0}


def test_multiclass_temperature_keeps_the_argmax_and_sums_to_one():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (3000, 3))
    truth = np.array([rng.choice(3, p=np.exp(l) / np.exp(l).sum()) for l in logits])
    reported = np.exp(2.5 * logits) / np.exp(2.5 * logits).sum(axis=1, keepdims=True)
    fitted = calibration.fit(np.eye(3)[truth], reported, "temperature", "multiclass", ["a", "b", "c"])
    assert fitted["classes"]["a"]["slope"] == pytest.approx(1 / 2.5, abs=0.05)
    scaled = calibration.apply_numpy(reported, fitted, ["a", "b", "c"])
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(scaled.argmax(axis=1), reported.argmax(axis=1))
    with pytest.raises(ValueError, match="temperature"):
        calibration.fit(np.eye(3)[truth], reported, "platt", "multiclass", ["a", "b", "c"])


def test_no_calibration_returns_the_probabilities_unchanged():
    p = np.array([[0.2, 0.9]], np.float32)
    np.testing.assert_array_equal(calibration.apply_numpy(p, None, ["a", "b"]), p)
