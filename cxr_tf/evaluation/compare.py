"""Runs side by side, like the source studies' result tables (S3: trainable parameters, time per epoch and
epochs to converge next to the score; S4: test accuracy per model).

One row per evaluated run: model, parameters, trainable parameters, mean time per epoch, epochs to the
best validation value, mean AUC with its bootstrap CI, accuracy for single-label tasks, and one AUC column
per class when every run has the same classes. ``comparison`` returns the raw numbers (the CSV),
``comparison_table`` their formatted Markdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cxr_tf.evaluation.formatting import fmt, with_ci
from cxr_tf.evaluation.report import Evaluation, Table


def _phases(ev: Evaluation) -> list[dict[str, int]]:
    """``params.json`` entries in training order (``train``, or ``phase1`` then ``phase2``)."""
    return list((ev.params or {}).values())


def comparison(evaluations: Sequence[Evaluation]) -> pd.DataFrame:
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


def comparison_table(frame: pd.DataFrame, evaluations: Sequence[Evaluation]) -> Table:
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


def write_comparison(evaluations: Sequence[Evaluation], out: str | Path) -> tuple[Path, Path, str]:
    """Write the comparison as Markdown to ``out`` and as CSV beside it (same name, ``.csv``).

    Returns:
        (Markdown path, CSV path, the Markdown table).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = comparison(evaluations)
    text = comparison_table(frame, evaluations).markdown()
    split = evaluations[0].split
    out.write_text(f"# Comparison of {len(evaluations)} runs ({split} split)\n\n{text}\n")
    csv_path = out.with_suffix(".csv")
    frame.to_csv(csv_path, index=False)
    return out, csv_path, text
