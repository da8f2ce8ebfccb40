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


@pytest.mark.parametrize("name", ["weighted_bce", "bce_pos_weight", "bce", "categorical_ce", "u_multiclass"])
def test_losses_serialise(name):
    loss = LOSSES.get(name)(positives=np.array([1.0, 2.0]), negatives=np.array([2.0, 1.0]))
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert again.get_config() == loss.get_config()
