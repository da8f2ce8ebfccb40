"""Evaluate a finished run on a split of records: the library behind ``python -m cxr_tf.evaluate``.

One call writes ``<run>/eval/<split>/`` (or ``out``):

* ``predictions.csv``: ``path``, ``patient``, then ``label_C`` (1/0 under the run's label policy, empty
  where the policy masks the label) and ``prob_C`` (positive-class probability) per class, one row per
  example in records order.
* ``metrics.json``: ``metrics.multilabel_metrics`` / ``multiclass_metrics`` plus what was evaluated
  (run, split, records, threshold, bootstrap) and, with a noise sweep, mean AUC per noise level.
* ``noise_sweep.csv`` with a noise sweep: one row per (noise, level).

Operating thresholds of a multilabel run are chosen on the ``val`` split (never on the split they are
scored on) and saved as the run's ``thresholds.json``, where predict and export read them. A U-MultiClass
run (head ``multilabel3``) is scored as a multilabel one on its positive-class probability, with
uncertain labels counting as not positive.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cxr_tf import reporting, runs
from cxr_tf.errors import UserError
from cxr_tf.evaluation import bootstrap, metrics as metrics_lib
from cxr_tf.evaluation.formatting import fmt, with_ci

VAL_SPLIT = "val"
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Predictions:
    """A model's outputs on one split, in records order.

    Attributes:
        paths: [N] image paths relative to the image root. patients: [N] patient ids (str).
        labels: float32 [N, K] 0/1 (one-hot for a single-label task). mask: bool [N, K], False where
            the label policy masks a label (U-Ignore, blank ignore). probs: float32 [N, K] in [0, 1].
    """

    paths: np.ndarray
    patients: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    probs: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` wrote: ``metrics`` is the content of ``metrics.json``, ``directory`` holds it."""

    metrics: dict[str, Any]
    directory: Path


def parse_threshold(value: str) -> str | float:
    """``--threshold`` as a method name (``youden``, ``f1``) or a fixed probability in [0, 1]."""
    if value in metrics_lib.THRESHOLD_METHODS:
        return value
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise UserError(f"--threshold {value!r}: use {', '.join(metrics_lib.THRESHOLD_METHODS)} or a number in [0, 1]")
    return number


def parse_sweep(spec: str) -> tuple[str, list[float]]:
    """``"poisson:0,0.5,1"`` -> ``("poisson", [0.0, 0.5, 1.0])``; a bad name, level or form is a ``UserError``."""
    from cxr_tf.pipeline import noise

    name, sep, levels = spec.partition(":")
    if not sep or not levels.strip():
        raise UserError(f"--noise-sweep {spec!r}: expected NAME:LEVEL,LEVEL,..., e.g. gaussian:0,5,10; "
                        f"names: {', '.join(noise.NOISES)}")
    try:
        parsed = [noise.parse_noise(f"{name}:{level}") for level in levels.split(",")]
    except UserError as err:
        raise UserError(f"--noise-sweep {spec!r}: {err}") from None
    return parsed[0][0], [level for _, level in parsed]


def check_records(run: runs.Run, records: str, splits: Sequence[str]) -> None:
    """Raise ``UserError`` unless ``records`` hold the run's classes, its task and ``splits``."""
    from cxr_tf.records import info as records_info

    info = records_info.load(records)
    missing = [name for name in run.classes if name not in info["classes"]]
    if missing:
        raise UserError(f"--records {records}: no class(es) {', '.join(missing)} of the run; "
                        f"these records have {', '.join(info['classes'])}")
    if (info["task"] == "multiclass") != (run.head == "multiclass"):
        raise UserError(f"--records {records}: a {info['task']} dataset, but the run's head is {run.head}")
    for split in splits:
        if split not in info["splits"]:
            raise UserError(f"--records {records}: no split {split!r}; it has {', '.join(info['splits'])}")


def example_ids(records: str, split: str, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(paths [N] str, patients [N] str) of a split, in the order ``make_dataset(shuffle=False)`` yields it.

    Reads only the path, patient and label features; for a single-label dataset, drops the examples of
    classes outside ``classes`` as ``make_dataset`` does.
    """
    import tensorflow as tf

    from cxr_tf.pipeline.dataset import select_classes, serialized_records
    from cxr_tf.records import features, info as records_info

    info = records_info.load(records)
    shards = records_info.shard_paths(records, info, split)
    spec = features.feature_spec(len(info["classes"]))
    wanted = {k: spec[k] for k in (features.PATH_KEY, features.PATIENT_KEY, features.LABELS_KEY)}
    # make_dataset's own read order (shuffle=False): the ids line up with its examples by construction.
    ds = serialized_records(shards).batch(4096).map(lambda serialized: tf.io.parse_example(serialized, wanted))
    paths, patients, states = [], [], []
    for batch in ds:
        paths.append(batch[features.PATH_KEY].numpy())
        patients.append(batch[features.PATIENT_KEY].numpy())
        states.append(batch[features.LABELS_KEY].numpy())
    paths, patients = np.concatenate(paths).astype(str), np.concatenate(patients).astype(str)
    selected = select_classes(info["classes"], classes)
    if info["task"] == "multiclass" and len(selected) < len(info["classes"]):
        keep = (np.concatenate(states)[:, selected] == 1).any(axis=1)
        paths, patients = paths[keep], patients[keep]
    return paths, patients


def predict(run: runs.Run, model: Any, records: str, split: str, *, batch_size: int = 64,
            noise: str | None = None, seed: int = 0) -> Predictions:
    """The run's predictions on ``split`` of ``records``, under its label policy and input size.

    No augmentation; ``noise`` (``"gaussian:5"``) is applied to every image when given.
    """
    from cxr_tf.pipeline import make_dataset

    cfg = run.config
    ds = make_dataset(records, split, classes=run.classes, uncertainty=cfg.uncertainty, blank=cfg.blank,
                      propagate_parents=cfg.propagate_parents, image_size=cfg.image_size,
                      channels="gray1", noise=noise, batch_size=batch_size, shuffle=False,
                      deterministic=True, transform_all_splits=True, seed=seed)
    probs, labels, weights = [], [], []
    for images, y, w in reporting.progress(ds, desc=f"{split}{' ' + noise if noise else ''}", unit="batch"):
        probs.append(np.asarray(runs.probabilities(model.predict_on_batch(images), run.head)))
        # U-MultiClass labels are one-hot over (negative, positive, uncertain): keep "positive".
        labels.append(y.numpy()[..., 1] if run.head == "multilabel3" else y.numpy())
        weights.append(w.numpy())
    paths, patients = example_ids(records, split, run.classes)
    if len(paths) != sum(len(p) for p in probs):
        raise RuntimeError(f"{records}/{split}: {len(paths)} records but {sum(len(p) for p in probs)} predictions")
    return Predictions(paths, patients, np.concatenate(labels), np.concatenate(weights) > 0,
                       np.concatenate(probs))


def score(preds: Predictions, classes: Sequence[str], head: str, thresholds: np.ndarray | None, *,
          resamples: int, seed: int) -> dict[str, Any]:
    """``metrics_lib`` metrics of predictions, with ``mean_auc_ci`` (None where it cannot be bootstrapped).

    ``thresholds``: [K] operating thresholds of a multilabel head (unused for ``multiclass``).
    """
    if head == "multiclass":
        out = metrics_lib.multiclass_metrics(preds.labels, preds.probs, preds.patients, classes,
                                             resamples=resamples, seed=seed)
        if resamples and out["mean_auc"] is not None:
            draws = bootstrap.bootstrap(preds.labels, preds.probs, preds.patients, resamples=resamples, seed=seed)
            out["mean_auc_ci"] = bootstrap.confidence_interval(np.nanmean(draws["auc"], axis=1), CI_LEVEL)
    else:
        out = metrics_lib.multilabel_metrics(preds.labels, preds.probs, preds.patients, classes, thresholds,
                                             mask=preds.mask, resamples=resamples, seed=seed)
    out.setdefault("mean_auc_ci", None)
    return out


def write_predictions(path: Path, preds: Predictions, classes: Sequence[str]) -> None:
    """``predictions.csv`` (module docstring) of ``preds``."""
    columns: dict[str, Any] = {"path": preds.paths, "patient": preds.patients}
    for k, name in enumerate(classes):
        columns[f"label_{name}"] = pd.array(np.where(preds.mask[:, k], preds.labels[:, k], np.nan), dtype="Int64")
        columns[f"prob_{name}"] = preds.probs[:, k].astype(np.float64)
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.6f")


def evaluate(run_dir: str | Path, *, split: str = "test", records: str | None = None,
             threshold: str | float = "youden", resamples: int = 1000, seed: int = 0, batch_size: int = 64,
             out: str | Path | None = None, noise_sweep: Sequence[str] = ()) -> Evaluation:
    """Predict ``split`` with the run's best model, score it and write the files of the module docstring.

    Args:
        run_dir: a finished fit run directory.
        split: split to evaluate. records: records directory (default: the run's own), which must hold
            the run's classes (e.g. another dataset for external validation).
        threshold: ``youden`` | ``f1`` (chosen on ``val``) or a fixed probability.
        resamples: patient-bootstrap draws of the 95 % CIs (0: none). seed: seed of the draws and noise.
        batch_size: prediction batch. out: output directory (default ``<run>/eval/<split>``).
        noise_sweep: specs ``"gaussian:0,5,10"``: mean AUC per noise level (clean level: no noise).
    """
    sweeps = [parse_sweep(spec) for spec in noise_sweep]
    run = runs.load(run_dir)
    records = records or run.config.records
    choose = run.head != "multiclass" and isinstance(threshold, str)
    check_records(run, records, [split, VAL_SPLIT] if choose else [split])
    model = run.load_model()
    predict_kw = {"batch_size": batch_size, "seed": seed}
    preds = predict(run, model, records, split, **predict_kw)

    thresholds, threshold_info = None, {"method": "argmax", "split": None}
    if run.head != "multiclass":
        if choose:
            val = predict(run, model, records, VAL_SPLIT, **predict_kw)
            thresholds = metrics_lib.choose_thresholds(val.labels, val.probs, threshold, val.mask)
            run.save_thresholds(dict(zip(run.classes, map(float, thresholds))), threshold, VAL_SPLIT)
            threshold_info = {"method": threshold, "split": VAL_SPLIT}
        else:
            thresholds = np.full(len(run.classes), float(threshold))
            threshold_info = {"method": threshold, "split": None}
    scores = score(preds, run.classes, run.head, thresholds, resamples=resamples, seed=seed)
    result: dict[str, Any] = {
        "run": str(run.path), "split": split, "records": str(records), "model": run.config.model,
        "task": scores.pop("task"), "examples": len(preds.paths),
        "patients": len(np.unique(preds.patients)), "threshold": threshold_info,
        "bootstrap": {"resamples": resamples, "seed": seed, "level": CI_LEVEL, "unit": "patient"},
        **scores,
    }

    sweep_rows = []
    for name, levels in sweeps:
        for level in levels:
            # The clean level goes through the same pipeline: noise.py returns the image untouched there.
            noisy = predict(run, model, records, split, noise=f"{name}:{level}", **predict_kw)
            at_level = score(noisy, run.classes, run.head, thresholds, resamples=resamples, seed=seed)
            sweep_rows.append({"noise": name, "level": level, "mean_auc": at_level["mean_auc"],
                               "mean_auc_ci": at_level["mean_auc_ci"],
                               "auc": {c: at_level["classes"][c]["auc"] for c in run.classes},
                               "accuracy": at_level.get("accuracy")})
    if sweeps:
        result["noise_sweep"] = sweep_rows

    directory = Path(out) if out else run.path / "eval" / split
    directory.mkdir(parents=True, exist_ok=True)
    write_predictions(directory / "predictions.csv", preds, run.classes)
    result = _json_safe(result)
    (directory / "metrics.json").write_text(json.dumps(result, indent=2))
    if sweeps:
        _write_sweep(directory / "noise_sweep.csv", sweep_rows, run.classes)
    return Evaluation(result, directory)


def _write_sweep(path: Path, rows: list[dict[str, Any]], classes: Sequence[str]) -> None:
    """``noise_sweep.csv``: noise, level, mean_auc, its CI bounds, accuracy, ``auc_C`` per class."""
    table = []
    for row in rows:
        low, high = row["mean_auc_ci"] or (None, None)
        table.append({"noise": row["noise"], "level": row["level"], "mean_auc": row["mean_auc"],
                      "mean_auc_ci_low": low, "mean_auc_ci_high": high, "accuracy": row["accuracy"],
                      **{f"auc_{c}": row["auc"][c] for c in classes}})
    pd.DataFrame(table).to_csv(path, index=False, float_format="%.6f")


def _json_safe(value: Any) -> Any:
    """``value`` with tuples as lists, NumPy scalars as Python ones and NaN as None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_table(metrics: dict[str, Any]) -> str:
    """A ``metrics.json`` dict as a fixed-width text table: per class, then mean AUC [95 % CI].

    Multilabel: n, positives, AUC [CI], AP, threshold, sensitivity, specificity. Multiclass: n, AUC [CI],
    precision, recall, F1, then accuracy.
    """
    classes = metrics["classes"]
    width = max(len("class"), *map(len, classes))
    multiclass = metrics["task"] == "multiclass"
    header = ["n", "AUC [95% CI]", "precision", "recall", "F1"] if multiclass else \
        ["n", "pos", "AUC [95% CI]", "AP", "thr", "sens", "spec"]
    widths = [5, 22, 9, 9, 6] if multiclass else [5, 5, 22, 6, 6, 6, 6]
    lines = [f"{'class':<{width}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(header, widths))]
    for name, c in classes.items():
        if multiclass:
            cells = [str(c["n"]), with_ci(c["auc"], c.get("auc_ci")), fmt(c["precision"]), fmt(c["recall"]),
                     fmt(c["f1"])]
        else:
            cells = [str(c["n"]), str(c["positives"]), with_ci(c["auc"], c.get("auc_ci")), fmt(c["ap"]),
                     fmt(c["threshold"]), fmt(c["sensitivity"]), fmt(c["specificity"])]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(cells, widths)))
    lines.append(f"mean AUC {with_ci(metrics['mean_auc'], metrics.get('mean_auc_ci'))}")
    if multiclass:
        lines.append(f"accuracy {fmt(metrics['accuracy'])}")
    return "\n".join(lines)
