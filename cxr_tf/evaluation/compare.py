"""Runs side by side, like the source studies' result tables (S3: trainable parameters, time per epoch and
epochs to converge next to the score; S4: test accuracy per model), and paired tests of their AUCs.

One row per evaluated run: model, parameters, trainable parameters, mean time per epoch, epochs to the
best validation value, mean AUC with its bootstrap CI, accuracy for single-label tasks, and one AUC column
per class when every run has the same classes. ``comparison`` returns the raw numbers (the CSV),
``comparison_table`` their formatted Markdown.

Two runs scored on the same images are compared per class on the images both saw (``predictions.csv``
joined by path): the AUC difference with a patient-bootstrap 95 % CI whose resamples are shared by both
runs (so the correlation between them is kept), and DeLong's test (DeLong et al. 1988, Biometrics 44:837)
computed with Sun & Xu's fast algorithm (IEEE Signal Processing Letters 21:1389, 2014): midranks instead
of the O(m n) comparison of every positive with every negative.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cxr_tf.evaluation import bootstrap, columns
from cxr_tf.evaluation.formatting import fmt, with_ci
from cxr_tf.evaluation.document import Table
from cxr_tf.evaluation.report import EvaluatedRun


def _phases(ev: EvaluatedRun) -> list[dict[str, int]]:
    """``params.json`` entries in training order (``train``, or ``phase1`` then ``phase2``)."""
    return list((ev.params or {}).values())


def comparison(evaluations: Sequence[EvaluatedRun]) -> pd.DataFrame:
    """One row per run; numbers unformatted (NaN where a run lacks one).

    Columns: ``run``, ``model``, ``task``, ``parameters`` and ``trainable`` (of the last training phase),
    ``seconds_per_epoch``, ``epochs_to_best`` (1-based epoch of the best monitored validation value),
    ``mean_auc``, ``mean_auc_low``, ``mean_auc_high``, ``accuracy`` (single-label tasks), then
    ``auc_<class>`` per class when all runs share their class set (in the first run's order).
    """
    class_sets = {frozenset(ev.metrics["classes"]) for ev in evaluations}
    shared = list(evaluations[0].metrics["classes"]) if len(class_sets) == 1 else []
    rows = []
    for ev in evaluations:
        m, phases = ev.metrics, _phases(ev)
        low, high = m.get("mean_auc_ci") or (np.nan, np.nan)
        row = {"run": str(ev.run.path), "model": ev.run.config.model, "task": m["task"],
               "parameters": phases[-1]["total"] if phases else np.nan,
               "trainable": phases[-1]["trainable"] if phases else np.nan,
               "seconds_per_epoch": (ev.timing or {}).get("mean_seconds_per_epoch", np.nan),
               "epochs_to_best": ev.best_epoch() or np.nan,
               "mean_auc": np.nan if m.get("mean_auc") is None else m["mean_auc"],
               "mean_auc_low": low, "mean_auc_high": high,
               "accuracy": m.get("accuracy", np.nan)}
        row.update({f"auc_{c}": np.nan if m["classes"][c].get("auc") is None else m["classes"][c]["auc"]
                    for c in shared})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame["accuracy"].isna().all():
        frame = frame.drop(columns="accuracy")
    return frame


def comparison_table(frame: pd.DataFrame, evaluations: Sequence[EvaluatedRun]) -> Table:
    """``comparison``'s numbers formatted; a two-phase run lists its trainable parameters per phase."""
    def count(value: float) -> str:
        return "n/a" if pd.isna(value) else f"{int(value):,}"

    class_columns = [c for c in frame.columns if c.startswith("auc_")]
    header = ["run", "model", "parameters", "trainable", "time/epoch", "epochs to best", "mean AUC [95 % CI]"]
    header += ["accuracy"] * ("accuracy" in frame) + [c.removeprefix("auc_") for c in class_columns]
    rows = []
    for (_, r), ev in zip(frame.iterrows(), evaluations):
        trainable = " then ".join(count(p["trainable"]) for p in _phases(ev)) or "n/a"
        ci = None if pd.isna(r["mean_auc_low"]) else (r["mean_auc_low"], r["mean_auc_high"])
        row = [r["run"], r["model"], count(r["parameters"]), trainable,
               "n/a" if pd.isna(r["seconds_per_epoch"]) else f"{r['seconds_per_epoch']:.1f} s",
               count(r["epochs_to_best"]), with_ci(None if pd.isna(r["mean_auc"]) else r["mean_auc"], ci)]
        if "accuracy" in frame:
            row.append(fmt(None if pd.isna(r["accuracy"]) else r["accuracy"]))
        row += [fmt(None if pd.isna(r[c]) else r[c]) for c in class_columns]
        rows.append(row)
    return Table(header, rows)


def _midranks(values: np.ndarray) -> np.ndarray:
    """Midranks (1-based, ties share their mean rank) along the last axis of ``values`` [S, N]."""
    from scipy.stats import rankdata

    return rankdata(values, method="average", axis=-1)


def delong_covariance(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of S score vectors and the DeLong covariance of those AUCs (Sun & Xu 2014, Algorithm 1).

    Args:
        y_true: [N] 0/1 labels with both values. scores: [S, N] scores (higher: more likely positive).

    Returns:
        (float64 [S] AUCs, float64 [S, S] covariance).
    """
    y = np.asarray(y_true).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError("DeLong's test needs at least one positive and one negative label")
    positives, negatives = scores[:, y], scores[:, ~y]
    tx, ty = _midranks(positives), _midranks(negatives)
    tz = _midranks(np.concatenate([positives, negatives], axis=1))
    auc = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    # Placement values: the fraction of negatives a positive outranks, and of positives above a negative.
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return auc, cov


def delong_test(y_true: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> tuple[float, float]:
    """DeLong's test of two correlated ROC AUCs on the same images.

    Args:
        y_true: [N] 0/1 labels with both values. scores_a, scores_b: [N] scores of the two models.

    Returns:
        (AUC(a) - AUC(b), two-sided p-value); p is 1 when the difference and its variance are both 0
        (identical rankings).
    """
    from scipy.stats import norm

    auc, cov = delong_covariance(y_true, np.stack([scores_a, scores_b]))
    delta = float(auc[0] - auc[1])
    variance = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if variance <= 1e-15:
        return delta, 1.0 if abs(delta) < 1e-15 else 0.0
    return delta, float(2.0 * norm.sf(abs(delta) / np.sqrt(variance)))


def paired(a: EvaluatedRun, b: EvaluatedRun, *, resamples: int, seed: int, level: float = 0.95) -> dict[str, Any]:
    """Per-class paired comparison of run ``a`` with run ``b`` on the images both were evaluated on.

    Images are matched by ``path``; a label the two runs disagree on (different label policies) or that
    either masks leaves the image out of that class. The patient bootstrap draws one set of resamples
    for both runs (``bootstrap.bootstrap`` scores both columns under the same draws).

    Returns:
        ``{"run_a", "run_b", "shared_images", "classes": {C: {"n", "positives", "auc_a", "auc_b",
        "delta_auc", "delta_auc_ci", "p_delong", "dropped"}}}`` (a class without both labels among the
        shared images has None values).
    """
    joined = a.predictions.merge(b.predictions, on="path", suffixes=("_a", "_b"))
    out: dict[str, Any] = {"run_a": str(a.run.path), "run_b": str(b.run.path), "shared_images": int(len(joined)),
                           "classes": {}}
    for name in [c for c in a.run.classes if c in b.run.classes]:
        la, lb = joined[f"{columns.label(name)}_a"], joined[f"{columns.label(name)}_b"]
        keep = (la.notna() & lb.notna() & (la == lb)).to_numpy(bool)
        y = la[keep].to_numpy().astype(int)
        scores = np.stack([joined.loc[keep, f"{columns.probability(name)}_a"].to_numpy(np.float64),
                           joined.loc[keep, f"{columns.probability(name)}_b"].to_numpy(np.float64)], axis=1)
        entry: dict[str, Any] = {"n": int(keep.sum()), "positives": int(y.sum()), "auc_a": None, "auc_b": None,
                                 "delta_auc": None, "delta_auc_ci": None, "p_delong": None, "dropped": None}
        if 0 < y.sum() < len(y):
            auc, _ = delong_covariance(y, scores.T)
            delta, p_value = delong_test(y, scores[:, 0], scores[:, 1])
            entry.update(auc_a=float(auc[0]), auc_b=float(auc[1]), delta_auc=delta, p_delong=p_value)
            if resamples:
                draws = bootstrap.bootstrap(np.stack([y, y], axis=1), scores,
                                            joined.loc[keep, "patient_a"].to_numpy(), resamples=resamples, seed=seed)
                deltas = draws["auc"][:, 0] - draws["auc"][:, 1]
                ci = bootstrap.confidence_interval(deltas, level)
                entry["delta_auc_ci"] = None if np.isnan(ci[0]) else list(ci)
                entry["dropped"] = bootstrap.dropped(deltas)
        out["classes"][name] = entry
    return out


def paired_comparisons(evaluations: Sequence[EvaluatedRun], *, resamples: int, seed: int) -> dict[str, Any]:
    """``comparison.json``: ``paired`` for every pair of runs (in the order given), with the bootstrap used."""
    return {"split": evaluations[0].split,
            "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95, "unit": "patient"},
            "pairs": [paired(a, b, resamples=resamples, seed=seed) for a, b in itertools.combinations(evaluations, 2)]}


def paired_table(comparisons: dict[str, Any]) -> Table:
    """One row per pair of runs and class: images, positives, both AUCs, dAUC [95 % CI], DeLong p."""
    rows = []
    for pair in comparisons["pairs"]:
        for name, c in pair["classes"].items():
            rows.append([f"{Path(pair['run_a']).name} - {Path(pair['run_b']).name}", name, str(c["n"]),
                         str(c["positives"]), fmt(c["auc_a"]), fmt(c["auc_b"]),
                         with_ci(c["delta_auc"], c["delta_auc_ci"]),
                         "n/a" if c["p_delong"] is None else f"{c['p_delong']:.3g}"])
    return Table(["runs (A - B)", "class", "n", "positives", "AUC A", "AUC B", "dAUC [95 % CI]", "p (DeLong)"], rows)


def write_comparison(evaluations: Sequence[EvaluatedRun], out: str | Path, *, resamples: int = 1000,
                     seed: int = 0) -> tuple[Path, Path, Path, str]:
    """Write the comparison: Markdown, CSV (the run table's numbers) and ``comparison.json`` (paired tests).

    ``out`` is a directory (``out/comparison.md``, ``.csv``, ``.json``) or, ending in ``.md``, the
    Markdown file with the CSV and JSON beside it under the same name.

    Returns:
        (Markdown path, CSV path, JSON path, the Markdown text).
    """
    out = Path(out)
    md_path = out if out.suffix == ".md" else out / "comparison.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    frame = comparison(evaluations)
    comparisons = paired_comparisons(evaluations, resamples=resamples, seed=seed)
    boot = comparisons["bootstrap"]
    text = (f"{comparison_table(frame, evaluations).markdown()}\n\n"
            f"## Paired comparison (images both runs saw; {boot['resamples']} shared patient resamples)\n\n"
            f"{paired_table(comparisons).markdown()}")
    split = evaluations[0].split
    md_path.write_text(f"# Comparison of {len(evaluations)} runs ({split} split)\n\n{text}\n")
    csv_path, json_path = md_path.with_suffix(".csv"), md_path.with_suffix(".json")
    frame.to_csv(csv_path, index=False)
    json_path.write_text(json.dumps(comparisons, indent=2))
    return md_path, csv_path, json_path, text
