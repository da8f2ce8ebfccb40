"""Operating points: thresholds meet their target on val, rates equal the confusion matrix, and the
patient-bootstrap CIs of sensitivity and specificity cover the true values at their nominal rate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from cxr_tf.evaluation import bootstrap, metrics as metrics_lib, operating_points as op


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(int)
    # Rounded scores: ties, the case where a threshold admits several images at once.
    return y, np.round(1 / (1 + np.exp(-(1.5 * y + rng.normal(0, 1, 300)))), 2)


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_threshold_at_specificity_gives_the_best_sensitivity_that_meets_the_target(scored, target):
    y, p = scored
    t = op.threshold_at_specificity(y, p, target)
    spec = lambda u: np.mean(p[y == 0] < u)  # noqa: E731
    sens = lambda u: np.mean(p[y == 1] >= u)  # noqa: E731
    assert spec(t) >= target
    admissible = [u for u in np.unique(np.r_[p, 1.01]) if spec(u) >= target]
    assert sens(t) == pytest.approx(max(sens(u) for u in admissible))


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_threshold_at_sensitivity_gives_the_best_specificity_that_meets_the_target(scored, target):
    y, p = scored
    t = op.threshold_at_sensitivity(y, p, target)
    spec = lambda u: np.mean(p[y == 0] < u)  # noqa: E731
    sens = lambda u: np.mean(p[y == 1] >= u)  # noqa: E731
    assert sens(t) >= target
    admissible = [u for u in np.unique(p) if sens(u) >= target]
    assert spec(t) == pytest.approx(max(spec(u) for u in admissible))


def test_point_rates_equal_the_confusion_matrix_of_binary_report(scored):
    y, p = scored
    entries = op.rates_with_ci(y, p, np.arange(len(y)), [0.3, 0.5, 0.7], resamples=0, seed=0)
    for entry in entries:
        expected = metrics_lib.binary_report(y, p, entry["threshold"])
        for rate in op.RATES:
            assert entry[rate] == pytest.approx(expected[rate], abs=1e-12)
        assert entry["sensitivity_ci"] is None


def test_resamples_without_a_positive_are_dropped_and_counted():
    # One positive patient among 20: a resample misses it with probability (19/20)^20 = 36 %.
    y = np.array([1] + [0] * 19)
    p = np.linspace(1.0, 0.0, 20)
    patients = np.arange(20)
    entry = op.rates_with_ci(y, p, patients, [0.5], resamples=300, seed=4)[0]
    missed = sum(int((w[:, 0] == 0).sum()) for w in bootstrap.patient_weights(patients, 300, 4))
    assert entry["dropped"] == missed > 50
    assert entry["sensitivity_ci"] == [1.0, 1.0]


def test_sensitivity_and_specificity_intervals_cover_the_truth_at_the_nominal_rate():
    """200 simulated test sets of 150 patients (1-3 images each, prevalence 0.3, binormal scores with
    unit separation): the 95 % intervals at threshold 0.5 must hold the true sensitivity
    P(score >= 0.5 | positive) = Phi(0.5) and specificity P(score < 0.5 | negative) = Phi(0.5)
    in at least 90 % of the sets."""
    truth = norm.cdf(0.5)
    rng = np.random.default_rng(7)
    covered = {"sensitivity": 0, "specificity": 0}
    sets = 200
    for _ in range(sets):
        images = rng.integers(1, 4, 150)
        patients = np.repeat(np.arange(150), images)
        y = np.repeat(rng.random(150) < 0.3, images).astype(int)
        score = y + rng.normal(0.0, 1.0, len(y))
        entry = op.rates_with_ci(y, score, patients, [0.5], resamples=200, seed=int(rng.integers(1 << 30)))[0]
        for rate in covered:
            low, high = entry[f"{rate}_ci"]
            covered[rate] += low <= truth <= high
    assert covered["sensitivity"] >= 0.9 * sets
    assert covered["specificity"] >= 0.9 * sets


def test_operating_points_choose_on_val_and_score_on_test(scored):
    y, p = scored
    val, test = slice(0, 150), slice(150, 300)
    points = op.operating_points(y[val], p[val], y[test], p[test], np.arange(150), specificities=[0.9],
                                 sensitivities=[0.8], resamples=50, seed=0)
    assert [(e["at"], e["target"]) for e in points] == [("specificity", 0.9), ("sensitivity", 0.8)]
    assert points[0]["threshold"] == op.threshold_at_specificity(y[val], p[val], 0.9)
    assert points[0]["val"]["specificity"] >= 0.9 and points[1]["val"]["sensitivity"] >= 0.8
    assert points[0]["specificity"] == pytest.approx(np.mean(p[test][y[test] == 0] < points[0]["threshold"]))
    assert op.operating_points(np.zeros(5), np.zeros(5), y, p, np.arange(300)) is None
