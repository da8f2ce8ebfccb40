"""Classification metrics of a run, as the five source studies report them (and with CIs they lack).

Point estimates come from scikit-learn; 95 % confidence intervals of AUC and AP from the vectorised
patient-level bootstrap (``bootstrap.py``), and of the thresholded rates of a multilabel class
(sensitivity, specificity, PPV, NPV, F1) from the same draws (``operating_points.rates_with_ci``). Operating thresholds are chosen on the validation split
(``choose_thresholds``) and applied to the test split, never chosen on the data they are scored on.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

from cxr_tf.evaluation import bootstrap, operating_points
from cxr_tf.registry import Choices

THRESHOLD_METHODS = Choices("threshold method", ("youden", "f1"))


def choose_thresholds(y: np.ndarray, prob: np.ndarray, method: str | float,
                      mask: np.ndarray | None = None) -> np.ndarray:
    """One operating threshold per class.

    Args:
        y: [N, K] binary labels. prob: [N, K] probabilities. mask: [N, K] 1 where a label counts.
        method: ``youden`` (max sensitivity + specificity - 1), ``f1`` (max F1), or a fixed number.

    Returns:
        float64 [K] thresholds in [0, 1]; 0.5 for a class without both labels.
    """
    if not isinstance(method, str):
        return np.full(y.shape[1], float(method))
    THRESHOLD_METHODS.check(method, "--threshold")
    mask = np.ones_like(y, bool) if mask is None else mask.astype(bool)
    out = np.full(y.shape[1], 0.5)
    for k in range(y.shape[1]):
        yk, pk = y[mask[:, k], k], prob[mask[:, k], k]
        if yk.min(initial=1) == yk.max(initial=0):
            continue
        if method == "youden":
            fpr, tpr, thresholds = skm.roc_curve(yk, pk)
            best = np.argmax(tpr - fpr)
        else:
            precision, recall, thresholds = skm.precision_recall_curve(yk, pk)
            f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
            best = np.argmax(f1)
        out[k] = float(np.clip(thresholds[best], 0.0, 1.0))
    return out


def binary_report(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, Any]:
    """Metrics of one class: AUC, AP, confusion matrix and the rates derived from it.

    Args:
        y: [N] 0/1 labels. prob: [N] probabilities. threshold: predicted positive when prob >= it.
    """
    pred = (prob >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    both = 0 < y.sum() < len(y)

    def ratio(a: int, b: int) -> float | None:
        return float(a / b) if b else None

    return {
        "n": int(len(y)), "positives": int(y.sum()), "threshold": float(threshold),
        "auc": float(skm.roc_auc_score(y, prob)) if both else None,
        "ap": float(skm.average_precision_score(y, prob)) if y.sum() else None,
        "sensitivity": ratio(tp, tp + fn), "specificity": ratio(tn, tn + fp),
        "ppv": ratio(tp, tp + fp), "npv": ratio(tn, tn + fn),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "confusion": [[int(tn), int(fp)], [int(fn), int(tp)]],
    }


def multilabel_metrics(y: np.ndarray, prob: np.ndarray, patients: np.ndarray, classes: Sequence[str],
                       thresholds: np.ndarray, *, mask: np.ndarray | None = None,
                       resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per-class and averaged metrics of a multilabel task, with patient-bootstrap 95 % CIs.

    Args:
        y: [N, K] 0/1 labels. prob: [N, K] probabilities. patients: [N] ids. classes: K names.
        thresholds: [K] operating thresholds. mask: [N, K] 1 where a label counts (U-Ignore).
        resamples: bootstrap draws (0 = no intervals).
    """
    mask = np.ones_like(y, bool) if mask is None else mask.astype(bool)
    per_class = {}
    for k, name in enumerate(classes):
        keep = mask[:, k]
        report = binary_report(y[keep, k].astype(int), prob[keep, k], thresholds[k])
        if resamples and report["auc"] is not None:
            draws = bootstrap.bootstrap(y[keep, k:k + 1], prob[keep, k:k + 1], patients[keep],
                                        resamples=resamples, seed=seed)
            report["auc_ci"] = bootstrap.confidence_interval(draws["auc"][:, 0])
            report["ap_ci"] = bootstrap.confidence_interval(draws["ap"][:, 0])
            report["bootstrap_dropped"] = bootstrap.dropped(draws["auc"][:, 0])
            (rates,) = operating_points.rates_with_ci(y[keep, k], prob[keep, k], patients[keep], [thresholds[k]],
                                                      resamples=resamples, seed=seed)
            report.update({f"{rate}_ci": rates[f"{rate}_ci"] for rate in operating_points.RATES})
        per_class[name] = report
    pred = (prob >= thresholds).astype(int)
    aucs = [r["auc"] for r in per_class.values() if r["auc"] is not None]
    out: dict[str, Any] = {"task": "multilabel", "classes": per_class,
                           "mean_auc": float(np.mean(aucs)) if aucs else None}
    if resamples and mask.all() and aucs:
        draws = bootstrap.bootstrap(y, prob, patients, resamples=resamples, seed=seed)
        out["mean_auc_ci"] = bootstrap.confidence_interval(np.nanmean(draws["auc"], axis=1))
    for average in ("micro", "macro"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average=average, zero_division=0)
        out[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    return out


def multiclass_metrics(y: np.ndarray, prob: np.ndarray, patients: np.ndarray, classes: Sequence[str],
                       *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy, confusion matrix, per-class and micro/macro precision/recall/F1, one-vs-rest AUC.

    Args:
        y: [N, K] one-hot labels. prob: [N, K] softmax probabilities. patients: [N] ids.
    """
    true, pred = y.argmax(axis=1), prob.argmax(axis=1)
    labels = list(range(len(classes)))
    out: dict[str, Any] = {
        "task": "multiclass",
        "accuracy": float(skm.accuracy_score(true, pred)),
        "confusion": skm.confusion_matrix(true, pred, labels=labels).tolist(),
        "classes": {},
    }
    p, r, f, support = skm.precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    for k, name in enumerate(classes):
        yk = (true == k).astype(int)
        entry = {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "n": int(support[k]),
                 "auc": float(skm.roc_auc_score(yk, prob[:, k])) if 0 < yk.sum() < len(yk) else None}
        if resamples and entry["auc"] is not None:
            draws = bootstrap.bootstrap(yk[:, None], prob[:, k:k + 1], patients, resamples=resamples, seed=seed)
            entry["auc_ci"] = bootstrap.confidence_interval(draws["auc"][:, 0])
            entry["bootstrap_dropped"] = bootstrap.dropped(draws["auc"][:, 0])
        out["classes"][name] = entry
    for average in ("micro", "macro"):
        p, r, f, _ = skm.precision_recall_fscore_support(true, pred, labels=labels, average=average,
                                                         zero_division=0)
        out[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    aucs = [e["auc"] for e in out["classes"].values() if e["auc"] is not None]
    out["mean_auc"] = float(np.mean(aucs)) if aucs else None
    return out
