"""Operating points: the sensitivity a class reaches at a fixed specificity (and the reverse), with
patient-bootstrap 95 % CIs of every thresholded metric.

A screening or triage tool is specified at a clinically chosen specificity (or sensitivity), not at
the Youden point. The threshold that meets the target is chosen on the validation split (highest
sensitivity among thresholds whose validation specificity is at least the target; resp. highest
specificity at the target sensitivity) and then applied unchanged to the test split, where
sensitivity, specificity, PPV, NPV and F1 get percentile intervals from the same patient resamples
as the AUC (``bootstrap.patient_weights``). A resample without a positive or a negative is dropped and
counted (``dropped``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

from cxr_tf.evaluation import bootstrap

DEFAULT_SPECIFICITIES = (0.90, 0.95)
DEFAULT_SENSITIVITIES = (0.90, 0.95)
RATES = ("sensitivity", "specificity", "ppv", "npv", "f1")


def threshold_at_specificity(y: np.ndarray, prob: np.ndarray, target: float) -> float:
    """The threshold (positive when prob >= it) of highest sensitivity whose specificity is >= ``target``.

    Args:
        y: [N] 0/1 labels with both values. prob: [N] scores. target: specificity in [0, 1].
    """
    fpr, _, thresholds = skm.roc_curve(y, prob, drop_intermediate=False)
    # fpr ascends along the curve, and so does tpr: the last admissible point has the best sensitivity.
    best = int(np.searchsorted(fpr, 1.0 - target + 1e-12, side="right")) - 1
    return _finite(thresholds[best])


def threshold_at_sensitivity(y: np.ndarray, prob: np.ndarray, target: float) -> float:
    """The threshold of highest specificity whose sensitivity is >= ``target`` (arguments as above)."""
    _, tpr, thresholds = skm.roc_curve(y, prob, drop_intermediate=False)
    first = int(np.searchsorted(tpr, target - 1e-12, side="left"))
    return _finite(thresholds[min(first, len(thresholds) - 1)])


def _finite(threshold: float) -> float:
    # roc_curve's first threshold is +inf (nothing positive); the next float above 1 says the same in JSON.
    return float(np.nextafter(1.0, 2.0)) if not np.isfinite(threshold) else float(threshold)


def weighted_rates(y: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Thresholded metrics of each weight row.

    Args:
        y: [N] 0/1 labels. predicted: [N, T] bool, one column per threshold. weights: [R, N] image
            multiplicities (a bootstrap block, or ones).

    Returns:
        ``RATES`` -> float64 [R, T] (NaN where a denominator is 0), plus ``"valid"``: bool [R], the rows
        with at least one positive and one negative.
    """
    y = np.asarray(y, bool)
    w = np.asarray(weights, np.float64)
    predicted = np.asarray(predicted, np.float64)
    tp = w @ (predicted * y[:, None])
    fp = w @ (predicted * ~y[:, None])
    positives, negatives = w @ y.astype(np.float64), w @ (~y).astype(np.float64)
    fn, tn = positives[:, None] - tp, negatives[:, None] - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp), "ppv": tp / (tp + fp),
               "npv": tn / (tn + fn), "f1": 2 * tp / (2 * tp + fp + fn)}
    out = {k: np.where(np.isfinite(v), v, np.nan) for k, v in out.items()}
    out["valid"] = (positives > 0) & (negatives > 0)
    return out


def rates_with_ci(y: np.ndarray, prob: np.ndarray, patients: np.ndarray, thresholds: Sequence[float], *,
                  resamples: int, seed: int, level: float = 0.95) -> list[dict[str, Any]]:
    """Point values and patient-bootstrap intervals of ``RATES`` at each of ``thresholds``.

    Args:
        y: [N] 0/1 labels. prob: [N] probabilities. patients: [N] ids. thresholds: T thresholds.
        resamples: bootstrap draws (0: no intervals). seed: their seed (same draws as the AUC's).

    Returns:
        One dict per threshold: ``threshold``, each rate, ``<rate>_ci`` ([low, high] or None) and
        ``dropped`` (resamples without a positive or a negative, left out of every interval).
    """
    predicted = np.asarray(prob)[:, None] >= np.asarray(thresholds, np.float64)[None, :]
    point = weighted_rates(y, predicted, np.ones((1, len(y))))
    draws: dict[str, list[np.ndarray]] = {k: [] for k in RATES}
    dropped = 0
    for weights in (bootstrap.patient_weights(patients, resamples, seed) if resamples else ()):
        block = weighted_rates(y, predicted, weights)
        dropped += int((~block["valid"]).sum())
        for k in RATES:
            draws[k].append(block[k][block["valid"]])
    out = []
    for t, threshold in enumerate(thresholds):
        entry: dict[str, Any] = {"threshold": float(threshold)}
        for k in RATES:
            entry[k] = None if np.isnan(point[k][0, t]) else float(point[k][0, t])
            values = np.concatenate(draws[k])[:, t] if resamples else np.empty(0)
            ci = bootstrap.confidence_interval(values, level)
            entry[f"{k}_ci"] = None if np.isnan(ci[0]) else list(ci)
        entry["dropped"] = dropped
        out.append(entry)
    return out


def operating_points(y_val: np.ndarray, prob_val: np.ndarray, y: np.ndarray, prob: np.ndarray,
                     patients: np.ndarray, *, specificities: Sequence[float] = DEFAULT_SPECIFICITIES,
                     sensitivities: Sequence[float] = DEFAULT_SENSITIVITIES, resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> list[dict[str, Any]] | None:
    """Operating points of one class: thresholds chosen on validation, metrics with CIs on test.

    Args:
        y_val, prob_val: [M] validation labels and probabilities (where thresholds are chosen).
        y, prob, patients: [N] test labels, probabilities and patient ids (where they are scored).
        specificities / sensitivities: target values in (0, 1).

    Returns:
        One dict per target: ``at`` (``specificity`` | ``sensitivity``), ``target``, ``val`` (the
        validation sensitivity and specificity at the threshold) and ``rates_with_ci``'s entry; None
        when validation or test lacks positives or negatives.
    """
    y_val, y = np.asarray(y_val).astype(int), np.asarray(y).astype(int)
    if not (0 < y_val.sum() < len(y_val) and 0 < y.sum() < len(y)):
        return None
    targets = [("specificity", s, threshold_at_specificity(y_val, prob_val, s)) for s in specificities]
    targets += [("sensitivity", s, threshold_at_sensitivity(y_val, prob_val, s)) for s in sensitivities]
    chosen = [t for _, _, t in targets]
    on_val = weighted_rates(y_val, np.asarray(prob_val)[:, None] >= np.asarray(chosen)[None, :],
                            np.ones((1, len(y_val))))
    scored = rates_with_ci(y, prob, patients, chosen, resamples=resamples, seed=seed, level=level)
    return [{"at": at, "target": float(target),
             "val": {"sensitivity": float(on_val["sensitivity"][0, i]),
                     "specificity": float(on_val["specificity"][0, i])}, **entry}
            for i, ((at, target, _), entry) in enumerate(zip(targets, scored))]
