"""Losses of the source studies, on logits, in one registry (``--loss NAME``).

Every factory takes the same keywords, ``positives``, ``negatives`` (float ``[K]`` label counts of the
train split after the label policy, ``cxr_tf.pipeline.counts.label_counts``) and ``class_weights``, and
uses those it needs, so ``fit`` builds any of them in one call. Per-element losses are returned as
``[B, K]`` so that Keras applies the pipeline's per-class ``sample_weight`` mask (U-Ignore) element-wise.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np
from keras import ops

from cxr_tf.errors import UserError
from cxr_tf.registry import Registry

LOSSES: Registry[Callable[..., keras.losses.Loss]] = Registry("loss")


@keras.saving.register_keras_serializable(package="cxr_tf")
class WeightedBCE(keras.losses.Loss):
    """Binary cross-entropy on logits with per-class weights for positives and negatives.

    ``loss = -(w_pos * y * log sigmoid(z) + w_neg * (1 - y) * log(1 - sigmoid(z)))`` per element.

    Args:
        positive_weights, negative_weights: float ``[K]``.
    """

    def __init__(self, positive_weights: Sequence[float], negative_weights: Sequence[float],
                 name: str = "weighted_bce", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.positive_weights = [float(w) for w in positive_weights]
        self.negative_weights = [float(w) for w in negative_weights]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, y_pred.dtype)
        # log sigmoid(z) = -softplus(-z); log(1 - sigmoid(z)) = -softplus(z): stable for large |z|.
        pos = ops.convert_to_tensor(self.positive_weights, y_pred.dtype)
        neg = ops.convert_to_tensor(self.negative_weights, y_pred.dtype)
        return pos * y_true * ops.softplus(-y_pred) + neg * (1.0 - y_true) * ops.softplus(y_pred)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "positive_weights": self.positive_weights,
                "negative_weights": self.negative_weights}


def _counts(positives: Any, negatives: Any, loss: str) -> tuple[np.ndarray, np.ndarray]:
    if positives is None or negatives is None:
        raise ValueError(f"--loss {loss} needs the train split's label counts")
    return np.asarray(positives, np.float64), np.asarray(negatives, np.float64)


@LOSSES.register("weighted_bce")
def weighted_bce(*, positives: Any = None, negatives: Any = None, **_: Any) -> keras.losses.Loss:
    """CheXNet's weighted BCE (Rajpurkar et al. 2017, https://arxiv.org/abs/1711.05225): positives weighted
    by the negative fraction N/(P+N), negatives by the positive fraction P/(P+N), per class."""
    pos, neg = _counts(positives, negatives, "weighted_bce")
    total = np.maximum(pos + neg, 1.0)
    return WeightedBCE(neg / total, pos / total, name="weighted_bce")


@LOSSES.register("bce_pos_weight")
def bce_pos_weight(*, positives: Any = None, negatives: Any = None, **_: Any) -> keras.losses.Loss:
    """BCE with ``pos_weight = negatives / positives`` per class (PyTorch's ``BCEWithLogitsLoss``, the NIH study)."""
    pos, neg = _counts(positives, negatives, "bce_pos_weight")
    return WeightedBCE(neg / np.maximum(pos, 1.0), np.ones_like(pos), name="bce_pos_weight")


@LOSSES.register("bce")
def bce(*, positives: Any = None, **_: Any) -> keras.losses.Loss:
    """Plain binary cross-entropy on logits, per element."""
    k = 1 if positives is None else len(positives)
    return WeightedBCE(np.ones(k), np.ones(k), name="bce")


@keras.saving.register_keras_serializable(package="cxr_tf")
class WeightedCategoricalCE(keras.losses.Loss):
    """Softmax cross-entropy on logits ``[B, K]`` with one-hot labels, each example weighted by its class.

    Args:
        class_weights: float ``[K]`` (e.g. ``[3, 1]`` for normal vs pneumonia in the Kermany binary study).
    """

    def __init__(self, class_weights: Sequence[float], name: str = "categorical_ce", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.class_weights = [float(w) for w in class_weights]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, y_pred.dtype)
        weights = ops.sum(y_true * ops.convert_to_tensor(self.class_weights, y_pred.dtype), axis=-1)
        return weights * ops.categorical_crossentropy(y_true, y_pred, from_logits=True)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_weights": self.class_weights}


@LOSSES.register("categorical_ce")
def categorical_ce(*, positives: Any = None, class_weights: Sequence[float] | None = None,
                   **_: Any) -> keras.losses.Loss:
    """Softmax cross-entropy for single-label tasks, optionally class-weighted."""
    if class_weights is None:
        k = 1 if positives is None else len(positives)
        class_weights = [1.0] * k
    elif positives is not None and len(class_weights) != len(positives):
        raise UserError(f"--class-weights has {len(class_weights)} values for {len(positives)} classes")
    return WeightedCategoricalCE(class_weights)


@keras.saving.register_keras_serializable(package="cxr_tf")
class UMultiClassCE(keras.losses.Loss):
    """U-MultiClass (Irvin et al. 2019): softmax cross-entropy over (negative, positive, uncertain) per class.

    Labels one-hot ``[B, K, 3]``, logits ``[B, K, 3]``; returns ``[B, K]`` so the mask applies per class.
    """

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return ops.categorical_crossentropy(ops.cast(y_true, y_pred.dtype), y_pred, from_logits=True, axis=-1)


@LOSSES.register("u_multiclass")
def u_multiclass(**_: Any) -> keras.losses.Loss:
    """The U-MultiClass loss (use with ``--uncertainty multiclass``)."""
    return UMultiClassCE(name="u_multiclass")


# LibAUC's default margin (AUCMLoss(margin=1.0)); scores are sigmoid probabilities, so 1 is their full range.
AUC_MARGIN = 1.0


@keras.saving.register_keras_serializable(package="cxr_tf")
class AUCMarginLoss(keras.losses.Loss):
    """The AUC-margin (AUCM) square loss of LibAUC, per class (Yuan et al. 2021, "Large-scale Robust Deep AUC
    Maximization", https://arxiv.org/abs/2012.03173; LibAUC ``AUCMLoss``/``MultiLabelAUCMLoss``, version v1).

    With scores ``s = sigmoid(logit)`` and ``p`` the class's positive ratio, per class::

        F(a, b, alpha) = (1-p) E[(s-a)^2 y] + p E[(s-b)^2 (1-y)]
                         + 2 alpha (p(1-p) m + E[p s (1-y) - (1-p) s y]) - p(1-p) alpha^2

    minimised over the model, ``a`` and ``b``, maximised over ``alpha >= 0``. LibAUC keeps ``a, b, alpha``
    as state moved by its PESG optimiser (gradient steps on ``a, b``, ascent on ``alpha``); a Keras loss
    owns no trainable state, so here they take their exact optimum on each mini-batch instead:
    ``a`` and ``b`` the mean score of the batch's positives and negatives, ``alpha = max(0, C / (p(1-p)))``
    with ``C`` the bracket above. They are constants for the gradient, which is then the gradient of
    ``min_{a,b} max_alpha F`` (Danskin's theorem), and any optimiser of the registry can be used
    (PESG's epoch-level regulariser is not reproduced). The batch statistics use every element; a
    ``sample_weight`` mask (U-Ignore) removes elements from the loss value only.

    Takes logits ``[B, K]`` (multilabel or multiclass head, one class against the rest) and returns
    per-element terms ``[B, K]`` whose mean over the batch is ``F``; the mean over classes is LibAUC's
    multi-label loss.

    Args:
        positive_ratios: float ``[K]`` in (0, 1), ``p`` of each class (of the train split).
        margin: ``m``.
    """

    def __init__(self, positive_ratios: Sequence[float], margin: float = AUC_MARGIN, name: str = "auc_margin",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.positive_ratios = [float(p) for p in positive_ratios]
        self.margin = float(margin)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y = ops.cast(y_true, y_pred.dtype)
        s = ops.sigmoid(y_pred)
        p = ops.convert_to_tensor(self.positive_ratios, y_pred.dtype)
        n_pos = ops.sum(y, axis=0)
        n_neg = ops.sum(1.0 - y, axis=0)
        a = ops.stop_gradient(ops.sum(s * y, axis=0) / ops.maximum(n_pos, 1.0))
        b = ops.stop_gradient(ops.sum(s * (1.0 - y), axis=0) / ops.maximum(n_neg, 1.0))
        # The alpha terms, per element: their batch mean is 2 alpha C - p(1-p) alpha^2.
        linear = p * s * (1.0 - y) - (1.0 - p) * s * y
        bracket = p * (1.0 - p) * self.margin + ops.mean(linear, axis=0)
        alpha = ops.stop_gradient(ops.maximum(bracket, 0.0) / (p * (1.0 - p)))
        return ((1.0 - p) * ops.square(s - a) * y + p * ops.square(s - b) * (1.0 - y)
                + 2.0 * alpha * (p * (1.0 - p) * self.margin + linear) - p * (1.0 - p) * ops.square(alpha))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "positive_ratios": self.positive_ratios, "margin": self.margin}


@LOSSES.register("auc_margin")
def auc_margin(*, positives: Any = None, negatives: Any = None, **_: Any) -> keras.losses.Loss:
    """LibAUC's AUC-margin square loss (``AUCMarginLoss``), ``p`` from the train split's label counts."""
    pos, neg = _counts(positives, negatives, "auc_margin")
    # A class with no positives (or no negatives) has no AUC; the clip keeps alpha = C / (p(1-p)) finite.
    ratios = np.clip(pos / np.maximum(pos + neg, 1.0), 1e-3, 1.0 - 1e-3)
    return AUCMarginLoss(ratios)
