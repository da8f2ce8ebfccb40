"""Calibration of predicted probabilities: Brier score, expected calibration error, reliability curves,
and temperature / Platt scaling fitted on the validation split.

Bins are equal-count: their edges are the quantiles of the probabilities, as scikit-learn's
``calibration_curve(strategy="quantile")`` places them, so each bin holds about N / ``bins`` images
(equal-width bins leave the high-probability bins of a rare finding nearly empty; Nixon et al. 2019,
"Measuring Calibration in Deep Learning", https://arxiv.org/abs/1904.01685). The expected calibration
error is the count-weighted mean gap between a bin's positive fraction and its mean probability.

Scaling maps each class's probability through its logit: ``p' = sigmoid(slope * logit(p) + intercept)``
(multilabel heads; Platt 1999 fits both, temperature scaling fixes the intercept at 0 and the slope at
1 / T, Guo et al. 2017, https://arxiv.org/abs/1706.04599), or ``p' = softmax(slope * log p)`` over the
classes of a single-label head (temperature only). Both are monotone per class, so AUCs do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from cxr_tf.registry import Choices

METHODS = Choices("calibration method", ("temperature", "platt"))
DEFAULT_BINS = 10
FILE = "calibration.json"
# Probabilities are clipped before their logit: a float32 sigmoid saturates at exactly 0 or 1.
EPSILON = 1e-7


def brier(y: np.ndarray, prob: np.ndarray) -> float:
    """Brier score: mean squared difference of [N] probabilities and [N] 0/1 labels (0 is perfect)."""
    return float(np.mean((np.asarray(prob, np.float64) - np.asarray(y, np.float64)) ** 2))


@dataclass(frozen=True)
class Reliability:
    """A reliability curve over equal-count bins (empty bins dropped), all arrays [B'].

    ``mean_prob``: mean probability of a bin; ``frac_pos``: its fraction of positives; ``count``: images.
    ``mean_prob``/``frac_pos`` equal scikit-learn's ``calibration_curve(strategy="quantile")`` output.
    """

    mean_prob: np.ndarray
    frac_pos: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of count / N * |frac_pos - mean_prob|."""
        return float(np.sum(self.count * np.abs(self.frac_pos - self.mean_prob)) / np.sum(self.count))

    def to_json(self) -> dict[str, list[float]]:
        return {"mean_prob": self.mean_prob.tolist(), "frac_pos": self.frac_pos.tolist(),
                "count": self.count.astype(int).tolist()}


def reliability(y: np.ndarray, prob: np.ndarray, bins: int = DEFAULT_BINS) -> Reliability:
    """Equal-count reliability curve of [N] 0/1 labels and [N] probabilities in ``bins`` bins."""
    y, prob = np.asarray(y, np.float64), np.asarray(prob, np.float64)
    edges = np.percentile(prob, np.linspace(0.0, 100.0, bins + 1))
    ids = np.searchsorted(edges[1:-1], prob)  # scikit-learn's assignment: a value on an edge goes below it
    count = np.bincount(ids, minlength=bins).astype(np.float64)
    used = count > 0
    mean_prob = np.bincount(ids, prob, bins)[used] / count[used]
    frac_pos = np.bincount(ids, y, bins)[used] / count[used]
    return Reliability(mean_prob, frac_pos, count[used])


def class_calibration(y: np.ndarray, prob: np.ndarray, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """``{"brier", "ece", "curve": Reliability.to_json()}`` of one class ([N] 0/1 labels, [N] probabilities)."""
    curve = reliability(y, prob, bins)
    return {"brier": brier(y, prob), "ece": curve.ece, "curve": curve.to_json()}


def _logit(prob: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(prob, np.float64), EPSILON, 1.0 - EPSILON)
    return np.log(p) - np.log1p(-p)


def fit(y: np.ndarray, prob: np.ndarray, method: str, head: str, classes: Sequence[str], *,
        mask: np.ndarray | None = None, split: str = "val") -> dict[str, Any]:
    """Fit ``method`` (``temperature`` | ``platt``) on validation predictions by maximum likelihood.

    Args:
        y: [N, K] 0/1 labels (one-hot for ``head="multiclass"``). prob: [N, K] probabilities.
        head: the run's head name (``cxr_tf.models.heads``); an exclusive head (``multiclass``) fits one
            temperature over the softmax (no Platt).
        mask: [N, K] True where a label counts (U-Ignore). split: recorded as where it was fitted.

    Returns:
        The parameters as JSON (``calibration.json``, export metadata):
        ``{"method", "split", "head", "classes": {C: {"slope", "intercept"}}}``; a class without both
        labels keeps the identity (slope 1, intercept 0).
    """
    from scipy.optimize import minimize

    from cxr_tf.models.heads import HEADS

    METHODS.check(method)
    exclusive = HEADS.get(head).exclusive
    if exclusive and method != "temperature":
        raise ValueError("a single-label (softmax) head is calibrated by temperature scaling only")
    y, prob = np.asarray(y, np.float64), np.asarray(prob, np.float64)
    mask = np.ones(y.shape, bool) if mask is None else np.asarray(mask, bool)
    params = {name: {"slope": 1.0, "intercept": 0.0} for name in classes}
    if exclusive:
        log_p = np.log(np.clip(prob, EPSILON, 1.0))

        def multiclass_nll(theta: np.ndarray) -> float:
            z = np.exp(theta[0]) * log_p
            z -= z.max(axis=1, keepdims=True)
            return float(-np.sum(y * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))))

        slope = float(np.exp(minimize(multiclass_nll, np.zeros(1), method="L-BFGS-B").x[0]))
        params = {name: {"slope": slope, "intercept": 0.0} for name in classes}
    else:
        for k, name in enumerate(classes):
            yk, zk = y[mask[:, k], k], _logit(prob[mask[:, k], k])
            if yk.min(initial=1) == yk.max(initial=0):
                continue

            def binary_nll(theta: np.ndarray) -> float:
                slope = np.exp(theta[0])  # a positive slope keeps the order of the scores
                z = slope * zk + (theta[1] if method == "platt" else 0.0)
                return float(np.sum(np.logaddexp(0.0, z) - yk * z))

            theta = minimize(binary_nll, np.zeros(2), method="L-BFGS-B").x
            params[name] = {"slope": float(np.exp(theta[0])),
                            "intercept": float(theta[1]) if method == "platt" else 0.0}
    return {"method": method, "split": split, "head": head, "classes": params}


def apply(prob: Any, calibration: dict[str, Any] | None, classes: Sequence[str]) -> Any:
    """Calibrated probabilities: float [B, K] in [0, 1] -> the same, through ``calibration`` (``fit``'s JSON).

    Works on NumPy arrays and on tensors inside a graph (Keras ops), so evaluate, predict and the exported
    SavedModel apply the same formula. ``None`` returns ``prob`` unchanged.
    """
    if not calibration:
        return prob
    from keras import ops

    from cxr_tf.models.heads import HEADS

    slope = ops.convert_to_tensor([calibration["classes"][c]["slope"] for c in classes], "float32")
    intercept = ops.convert_to_tensor([calibration["classes"][c]["intercept"] for c in classes], "float32")
    p = ops.clip(ops.cast(prob, "float32"), EPSILON, 1.0 - EPSILON)
    if HEADS.get(calibration["head"]).exclusive:
        return ops.softmax(slope * ops.log(p) + intercept, axis=-1)
    return ops.sigmoid(slope * (ops.log(p) - ops.log1p(-p)) + intercept)


def apply_numpy(prob: np.ndarray, calibration: dict[str, Any] | None, classes: Sequence[str]) -> np.ndarray:
    """``apply`` on a NumPy array, returning float32 NumPy."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(apply(prob, calibration, classes)), np.float32) if calibration \
        else np.asarray(prob, np.float32)
