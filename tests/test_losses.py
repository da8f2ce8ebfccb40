"""Losses against hand-computed values; masks apply per class; configs round-trip."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from cxr_tf.errors import UserError
from cxr_tf.training.losses import LOSSES


def softplus(z: float) -> float:
    return math.log1p(math.exp(z))


LOGITS = np.array([[2.0, -1.0]], np.float32)
LABELS = np.array([[1.0, 0.0]], np.float32)


def test_weighted_bce_weights_positives_by_the_negative_fraction():
    loss = LOSSES.get("weighted_bce")(positives=np.array([1.0, 3.0]), negatives=np.array([3.0, 1.0]))
    # class 0: positive, weight N/(P+N) = 0.75; class 1: negative, weight P/(P+N) = 0.75.
    expected = (0.75 * softplus(-2.0) + 0.75 * softplus(-1.0)) / 2
    assert float(loss(LABELS, LOGITS)) == pytest.approx(expected, rel=1e-5)


def test_bce_pos_weight_scales_only_positives():
    loss = LOSSES.get("bce_pos_weight")(positives=np.array([1.0, 1.0]), negatives=np.array([4.0, 4.0]))
    expected = (4.0 * softplus(-2.0) + 1.0 * softplus(-1.0)) / 2
    assert float(loss(LABELS, LOGITS)) == pytest.approx(expected, rel=1e-5)


def test_a_zero_mask_removes_a_label_from_the_loss():
    loss = LOSSES.get("bce")(positives=np.ones(2))
    masked = float(loss(LABELS, LOGITS, sample_weight=np.array([[1.0, 0.0]], np.float32)))
    assert masked == pytest.approx(softplus(-2.0) / 2, rel=1e-5)


def test_categorical_ce_weights_each_example_by_its_class():
    loss = LOSSES.get("categorical_ce")(positives=np.ones(2), class_weights=[3.0, 1.0])
    logits = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    log_z = math.log(math.exp(1.0) + 1.0)
    expected = (3.0 * (log_z - 1.0) + 1.0 * log_z) / 2
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(UserError, match="--class-weights"):
        LOSSES.get("categorical_ce")(positives=np.ones(3), class_weights=[3.0, 1.0])


def test_u_multiclass_is_a_softmax_over_three_states_per_class():
    loss = LOSSES.get("u_multiclass")()
    logits = np.zeros((1, 2, 3), np.float32)
    labels = np.array([[[0, 1, 0], [0, 0, 1]]], np.float32)
    assert float(loss(labels, logits)) == pytest.approx(math.log(3.0), rel=1e-5)


@pytest.mark.parametrize("name", ["weighted_bce", "bce_pos_weight", "bce", "categorical_ce", "u_multiclass",
                                  "auc_margin"])
def test_losses_serialise(name):
    loss = LOSSES.get(name)(positives=np.array([1.0, 2.0]), negatives=np.array([2.0, 1.0]))
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert again.get_config() == loss.get_config()


L3 = math.log(3.0)  # sigmoid(+-ln 3) = 0.75 / 0.25


def test_auc_margin_matches_hand_computed_saddle_values():
    # Class 0, p = 1/2, y = (1, 0, 0), s = (.75, .25, .75): a = .75, b = .5; negatives' square term
    # .5 * (.0625 + .0625) / 3 = 1/48; C = .25 + .5 * (.25 + .75 - .75) / 3 = 7/24 > 0, so
    # alpha = C / .25 and the alpha terms give C^2 / .25 = 49/144: 13/36 in all.
    # Class 1, p = 1/4, y = (0, 1, 0), s = (.25, .75, .25): a = .75, b = .25, no square terms;
    # C = 3/16 + (.25 * .5 - .75 * .75) / 3 = 1/24, alpha terms C^2 / (3/16) = 1/108.
    loss = LOSSES.get("auc_margin")(positives=np.array([1.0, 1.0]), negatives=np.array([1.0, 3.0]))
    labels = np.array([[1, 0], [0, 1], [0, 0]], np.float32)
    logits = np.array([[L3, -L3], [-L3, L3], [L3, -L3]], np.float32)
    assert float(loss(labels, logits)) == pytest.approx((13 / 36 + 1 / 108) / 2, rel=1e-5)


def test_auc_margin_alpha_stays_at_zero_when_positives_lead_by_more_than_the_margin_term():
    # p = 1/4, y = (1, 0), s = (.75, .25): C = 3/16 + (.25 * .25 - .75 * .75) / 2 < 0 -> alpha = 0, and
    # a, b are the exact class means, so the loss is 0.
    loss = LOSSES.get("auc_margin")(positives=np.array([1.0]), negatives=np.array([3.0]))
    assert float(loss(np.array([[1], [0]], np.float32), np.array([[L3], [-L3]], np.float32))) == \
        pytest.approx(0.0, abs=1e-7)


def libauc_objective(s: np.ndarray, y: np.ndarray, p: float, a: float, b: float, alpha: np.ndarray) -> np.ndarray:
    """LibAUC's AUCMLoss v1 objective (margin 1) on one class, written as in its source; ``alpha`` may be a grid."""
    return ((1 - p) * np.mean((s - a) ** 2 * (y == 1)) + p * np.mean((s - b) ** 2 * (y == 0))
            + 2 * alpha * (p * (1 - p) * 1.0 + np.mean(p * s * (y == 0) - (1 - p) * s * (y == 1)))
            - p * (1 - p) * alpha ** 2)


def test_auc_margin_is_libaucs_objective_minimised_over_a_b_and_maximised_over_alpha():
    from scipy.optimize import minimize

    logits = np.random.default_rng(0).normal(size=(8, 1)).astype(np.float32)
    labels = np.array([[1], [0], [1], [0], [0], [0], [1], [0]], np.float32)
    s, y, p = 1 / (1 + np.exp(-logits[:, 0].astype(np.float64))), labels[:, 0], 0.3
    alphas = np.linspace(0.0, 3.0, 30001)

    def worst_alpha(ab: np.ndarray) -> float:
        return float(np.max(libauc_objective(s, y, p, ab[0], ab[1], alphas)))

    saddle = minimize(worst_alpha, x0=[0.5, 0.5], method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12}).fun
    loss = LOSSES.get("auc_margin")(positives=np.array([3.0]), negatives=np.array([7.0]))
    assert float(loss(labels, logits)) == pytest.approx(saddle, rel=1e-4)


def test_auc_margin_gradient_raises_positive_scores_and_lowers_negative_ones():
    import tensorflow as tf

    loss = LOSSES.get("auc_margin")(positives=np.array([1.0]), negatives=np.array([1.0]))
    logits = tf.Variable([[0.2], [-0.1], [0.0], [0.3]])
    labels = np.array([[1], [1], [0], [0]], np.float32)
    with tf.GradientTape() as tape:
        value = loss(labels, logits)
    gradient = tape.gradient(value, logits).numpy()[:, 0]
    assert (gradient[:2] < 0).all() and (gradient[2:] > 0).all()
