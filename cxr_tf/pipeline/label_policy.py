"""Label policies: raw label states (1 / 0 / -1 uncertain / -2 blank) -> training labels and loss weights.

Applied per example inside ``tf.data`` so one build of records serves every study. The uncertainty
policies are those of CheXpert (Irvin et al. 2019, https://arxiv.org/abs/1901.07031):

* ``ones`` (U-Ones): uncertain -> positive. ``zeros`` (U-Zeros): uncertain -> negative.
* ``ignore`` (U-Ignore): uncertain labels get weight 0, i.e. they are masked out of the loss.
* ``multiclass`` (U-MultiClass): every class is a 3-way problem over (negative, positive, uncertain);
  labels are one-hot float32 ``[K, 3]`` for a per-class softmax head, weights stay ``[K]``.

Blank (not mentioned) is ``zeros`` (negative, as the thesis and CheXpert's baseline do) or ``ignore``.
Parent propagation runs on the raw states before the policy: a positive (``"positive"``) or a positive or
uncertain (``"uncertain"``) child makes every ancestor in the dataset's label tree positive.
The policy names are the choice sets of ``cxr_tf.labels`` (``UNCERTAINTY_POLICIES``, ``BLANK_POLICIES``,
``PROPAGATION_MODES``), which the config dataclasses name without importing TensorFlow.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from cxr_tf import labels as states
# Column order of U-MultiClass one-hot labels.
MULTICLASS_STATES = ("negative", "positive", "uncertain")

# Table rows are indexed by state - BLANK: blank, uncertain, negative, positive.
_ROW = {states.BLANK: 0, states.UNCERTAIN: 1, states.NEGATIVE: 2, states.POSITIVE: 3}


def ancestor_matrix(classes: Sequence[str], label_tree: Mapping[str, str]) -> np.ndarray:
    """float32 ``[K, K]`` with ``[c, a] = 1`` when class ``a`` is an ancestor of class ``c``.

    Parents that are not among ``classes`` are skipped but their own parents still count, so
    Pneumonia -> Consolidation -> Lung Opacity reaches Lung Opacity whatever subset was recorded.
    """
    index = {name: i for i, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), np.float32)
    for child, c in index.items():
        parent, seen = label_tree.get(child), {child}
        while parent is not None and parent not in seen:
            seen.add(parent)
            if parent in index:
                matrix[c, index[parent]] = 1.0
            parent = label_tree.get(parent)
    return matrix


def propagate(state: tf.Tensor, ancestors: np.ndarray, mode: str) -> tf.Tensor:
    """Raw states int64 ``[..., K]`` with ancestors of triggering children set positive (``mode`` above)."""
    if mode == "none" or not ancestors.any():
        return state
    trigger = tf.equal(state, states.POSITIVE)
    if mode == "uncertain":
        trigger = trigger | tf.equal(state, states.UNCERTAIN)
    reached = tf.tensordot(tf.cast(trigger, tf.float32), ancestors, axes=[[-1], [0]]) > 0
    return tf.where(reached, tf.constant(states.POSITIVE, state.dtype), state)


def policy_tables(uncertainty: str, blank: str) -> tuple[np.ndarray, np.ndarray]:
    """(label table, weight table) indexed by ``state - BLANK``; labels are ``[4]`` or ``[4, 3]``."""
    states.UNCERTAINTY_POLICIES.check(uncertainty, "uncertainty")
    states.BLANK_POLICIES.check(blank, "blank")
    weights = np.ones(4, np.float32)
    weights[_ROW[states.BLANK]] = 0.0 if blank == "ignore" else 1.0
    weights[_ROW[states.UNCERTAIN]] = 0.0 if uncertainty == "ignore" else 1.0
    if uncertainty == "multiclass":
        labels = np.zeros((4, 3), np.float32)
        labels[_ROW[states.BLANK], 0] = 1.0
        labels[_ROW[states.NEGATIVE], 0] = 1.0
        labels[_ROW[states.POSITIVE], 1] = 1.0
        labels[_ROW[states.UNCERTAIN], 2] = 1.0
    else:
        labels = np.zeros(4, np.float32)
        labels[_ROW[states.POSITIVE]] = 1.0
        labels[_ROW[states.UNCERTAIN]] = 1.0 if uncertainty == "ones" else 0.0
    return labels, weights


def apply_policy(state: tf.Tensor, uncertainty: str, blank: str) -> tuple[tf.Tensor, tf.Tensor]:
    """Raw states int64 ``[..., K]`` -> (labels float32 ``[..., K]`` or ``[..., K, 3]``, weights ``[..., K]`` in {0, 1})."""
    label_table, weight_table = policy_tables(uncertainty, blank)
    row = tf.clip_by_value(state - states.BLANK, 0, 3)
    return tf.gather(tf.constant(label_table), row), tf.gather(tf.constant(weight_table), row)
