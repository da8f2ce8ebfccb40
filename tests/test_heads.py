"""The output heads: units, logits -> probabilities, the positive label and Grad-CAM target of each."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxr_tf.errors import UserError
from cxr_tf.models.heads import HEADS, head_for

LOGITS = np.array([[2.0, -1.0, 0.0]], np.float32)  # one image, three classes


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@pytest.mark.parametrize("name, units, shape", [("multilabel", 3, (3,)), ("multiclass", 3, (3,)),
                                                ("multilabel3", 9, (3, 3))])
def test_units_are_one_per_class_and_three_per_class_for_u_multiclass(name, units, shape):
    assert HEADS.get(name).units(3) == units
    assert HEADS.get(name).output_shape(3) == shape


def test_multilabel_probability_is_a_sigmoid_per_class():
    got = np.asarray(HEADS.get("multilabel").probabilities(LOGITS))
    np.testing.assert_allclose(got, [[sigmoid(2.0), sigmoid(-1.0), 0.5]], rtol=1e-6)


def test_multiclass_probabilities_are_one_softmax_over_the_classes():
    got = np.asarray(HEADS.get("multiclass").probabilities(LOGITS))
    total = math.exp(2.0) + math.exp(-1.0) + 1.0
    np.testing.assert_allclose(got, [[math.exp(2.0) / total, math.exp(-1.0) / total, 1.0 / total]], rtol=1e-6)


def test_u_multiclass_probability_is_the_positive_states_share_of_each_class():
    # Class 0: (negative, positive, uncertain) logits (0, ln 3, 0) -> positive 3 / 5; class 1: all equal -> 1/3.
    logits = np.array([[[0.0, math.log(3.0), 0.0], [1.0, 1.0, 1.0]]], np.float32)
    got = np.asarray(HEADS.get("multilabel3").probabilities(logits))
    assert got.shape == (1, 2)
    np.testing.assert_allclose(got, [[0.6, 1.0 / 3.0]], rtol=1e-6)


def test_probabilities_are_float32_from_float16_logits():
    got = np.asarray(HEADS.get("multilabel").probabilities(LOGITS.astype(np.float16)))
    assert got.dtype == np.float32


def test_u_multiclass_positive_label_and_grad_cam_target_are_the_positive_state():
    head = HEADS.get("multilabel3")
    one_hot = np.array([[[0, 1, 0], [0, 0, 1]]], np.float32)  # class 0 positive, class 1 uncertain
    np.testing.assert_array_equal(head.positive_labels(one_hot), [[1, 0]])
    logits = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    np.testing.assert_array_equal(head.class_logit(logits, [1]), [4.0])


@pytest.mark.parametrize("name", ["multilabel", "multiclass"])
def test_single_state_heads_keep_labels_and_target_the_class_logit(name):
    labels = np.array([[1, 0, 1]], np.float32)
    np.testing.assert_array_equal(HEADS.get(name).positive_labels(labels), labels)
    np.testing.assert_array_equal(HEADS.get(name).class_logit(LOGITS, [0]), [2.0])


def test_decisions_threshold_each_class_unless_the_head_is_exclusive():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.35, 0.45]])
    thresholds = np.array([0.5, 0.3, 0.5])
    np.testing.assert_array_equal(HEADS.get("multilabel").decisions(probs, thresholds),
                                  [[True, True, False], [False, True, False]])
    np.testing.assert_array_equal(HEADS.get("multiclass").decisions(probs, None),
                                  [[True, False, False], [False, False, True]])


@pytest.mark.parametrize("task, uncertainty, head, monitor", [
    ("multiclass", "zeros", "multiclass", "val_accuracy"), ("multilabel", "ones", "multilabel", "val_mean_auc"),
    ("multilabel", "multiclass", "multilabel3", "val_mean_auc")])
def test_the_records_task_and_uncertainty_policy_choose_the_head(task, uncertainty, head, monitor):
    chosen = head_for(task, uncertainty)
    assert (chosen.name, chosen.monitor, chosen.task) == (head, monitor, task)


def test_an_unknown_head_name_suggests_the_closest():
    with pytest.raises(UserError, match="did you mean 'multilabel3'"):
        HEADS.get("multilabel_3")
