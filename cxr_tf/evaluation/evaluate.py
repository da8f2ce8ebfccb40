"""Evaluate a finished run on a split of records: the library behind ``python -m cxr_tf.evaluate``.

One call writes ``<run>/eval/<split>/`` (or ``out``):

* ``predictions.csv``: ``path``, ``patient``, ``view``, ``projection``, ``sex``, ``age`` (empty where the
  source does not record them), then ``label_C`` (1/0 under the run's label policy, empty where the
  policy masks the label) and ``prob_C`` (positive-class probability, calibrated with ``--calibrate``)
  per class (``columns.py``), one row per example in records order.
* ``metrics.json``: ``metrics.multilabel_metrics`` / ``multiclass_metrics`` plus what was evaluated
  (run, split, records, threshold, bootstrap), ``calibration`` (Brier, ECE, reliability curves;
  ``calibration.py``), ``operating_points`` (``operating_points.py``), ``subgroups``
  (``subgroups.py``), ``errors`` (the gallery's count), ``provenance`` (versions, commit, device, date,
  command) and, with a noise sweep, mean AUC per noise level.
* ``errors.json`` and ``errors/*.png``: the most confident false positives and negatives per class with
  their Grad-CAM overlays (``errors.py``).
* ``noise_sweep.csv`` with a noise sweep: one row per (noise, level).

and the split's AUCs (and accuracy) into the run's TensorBoard log (``write_tensorboard``).

Operating thresholds of a multilabel run are chosen on the ``val`` split (never on the split they are
scored on) and saved as the run's ``thresholds.json``, where predict and export read them; so are the
operating points at fixed specificity/sensitivity and the calibration fitted by ``calibrate``
(the run's ``calibration.json``, carried into the export's metadata). A U-MultiClass run (head
``multilabel3``) is scored as a multilabel one on its positive-class probability, with uncertain labels
counting as not positive.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from cxr_tf import reporting
from cxr_tf.training import runs
from cxr_tf.errors import UserError
from cxr_tf.evaluation import bootstrap, calibration, columns, errors, metrics as metrics_lib, operating_points, \
    provenance, subgroups
from cxr_tf.records import features as record_features

if TYPE_CHECKING:
    from cxr_tf.models.heads import Head

VAL_SPLIT = "val"
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Predictions:
    """A model's outputs on one split, in records order.

    Attributes:
        paths: [N] image paths relative to the image root. patients: [N] patient ids (str).
        labels: float32 [N, K] 0/1 (one-hot for a single-label task). mask: bool [N, K], False where
            the label policy masks a label (U-Ignore, blank ignore). probs: float32 [N, K] in [0, 1].
        attributes: ``ATTRIBUTE_COLUMNS`` -> [N]: view, projection, sex (str, "" unknown), age
            (int64 years, -1 unknown).
    """

    paths: np.ndarray
    patients: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    probs: np.ndarray
    attributes: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationOutput:
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


def check_records(run: runs.Run, records: str, splits: Sequence[str], verify: bool = False) -> None:
    """Raise ``UserError`` unless ``records`` hold the run's classes, its task and ``splits``.

    With ``verify``, every shard's sha256 is compared with dataset.json (``DataError`` names a damaged one).
    """
    from cxr_tf.records import info as records_info

    info = records_info.RecordsInfo.load(records)
    if verify:
        records_info.verify_shards(records, info)
    missing = [name for name in run.classes if name not in info.classes]
    if missing:
        raise UserError(f"--records {records}: no class(es) {', '.join(missing)} of the run; "
                        f"these records have {', '.join(info.classes)}")
    if info.task != run.head.task:
        raise UserError(f"--records {records}: a {info.task} dataset, but the run's head is {run.head.name}")
    for split in splits:
        if split not in info.splits:
            raise UserError(f"--records {records}: no split {split!r}; it has {', '.join(info.splits)}")


# predictions.csv column -> record feature of the subgroup attributes.
ATTRIBUTE_COLUMNS = {"view": record_features.VIEW_KEY, "projection": record_features.PROJECTION_KEY,
                     "sex": record_features.SEX_KEY, "age": record_features.AGE_KEY}


def example_ids(records: str, split: str, classes: Sequence[str],
                exclusive_classes: bool = False) -> dict[str, np.ndarray]:
    """Identifiers of a split's examples, in the order ``make_dataset(shuffle=False)`` yields them.

    Reads only the path, patient, attribute and label features; for a single-label dataset, drops the
    examples of classes outside ``classes`` as ``make_dataset`` does, and so does ``exclusive_classes``
    for any dataset.

    Returns:
        ``"path"``, ``"patient"`` and the ``ATTRIBUTE_COLUMNS`` -> [N] arrays (str; int64 for ``age``).
    """
    import tensorflow as tf

    from cxr_tf.pipeline.dataset import select_classes, serialized_records
    from cxr_tf.records import features, info as records_info

    info = records_info.RecordsInfo.load(records)
    shards = records_info.shard_paths(records, info, split)
    spec = features.feature_spec(len(info.classes))
    columns = {"path": features.PATH_KEY, "patient": features.PATIENT_KEY, **ATTRIBUTE_COLUMNS}
    wanted = {k: spec[k] for k in (*columns.values(), features.LABELS_KEY)}
    # make_dataset's own read order (shuffle=False): the ids line up with its examples by construction.
    ds = serialized_records(shards).batch(4096).map(lambda serialized: tf.io.parse_example(serialized, wanted))
    parts: dict[str, list[np.ndarray]] = {key: [] for key in wanted}
    for batch in ds:
        for key in wanted:
            parts[key].append(batch[key].numpy())
    out = {name: np.concatenate(parts[key]) for name, key in columns.items()}
    out = {name: values if values.dtype.kind == "i" else values.astype(str) for name, values in out.items()}
    selected = select_classes(info.classes, classes)
    if (info.task == "multiclass" and len(selected) < len(info.classes)) or exclusive_classes:
        states = np.concatenate(parts[features.LABELS_KEY])
        keep = ~(np.delete(states, selected, axis=1) == 1).any(axis=1) if exclusive_classes else \
            (states[:, selected] == 1).any(axis=1)
        out = {name: values[keep] for name, values in out.items()}
    return out


def predict(run: runs.Run, model: Any, records: str, split: str, *, batch_size: int = 64,
            noise: str | None = None, seed: int = 0) -> Predictions:
    """The run's predictions on ``split`` of ``records``, under its label policy and input size.

    No augmentation; ``noise`` (``"gaussian:5"``) is applied to every image when given.
    """
    from cxr_tf.pipeline import make_dataset
    from cxr_tf.records import info as records_info

    cfg = run.config
    ds = make_dataset(records, split, classes=run.classes, uncertainty=cfg.uncertainty, blank=cfg.blank,
                      propagate_parents=cfg.propagate_parents, exclusive_classes=cfg.exclusive_classes,
                      image_size=cfg.image_size, channels="gray1", noise=noise, batch_size=batch_size, shuffle=False,
                      deterministic=True, transform_all_splits=True, seed=seed)
    probs, labels, weights = [], [], []
    with records_info.naming_damaged_shards(records):
        for images, y, w in reporting.progress(ds, desc=f"{split}{' ' + noise if noise else ''}", unit="batch"):
            probs.append(np.asarray(run.head.probabilities(model.predict_on_batch(images))))
            labels.append(run.head.positive_labels(y.numpy()))
            weights.append(w.numpy())
        ids = example_ids(records, split, run.classes, cfg.exclusive_classes)
    paths, patients = ids.pop("path"), ids.pop("patient")
    if len(paths) != sum(len(p) for p in probs):
        raise RuntimeError(f"{records}/{split}: {len(paths)} records but {sum(len(p) for p in probs)} predictions")
    return Predictions(paths, patients, np.concatenate(labels), np.concatenate(weights) > 0,
                       np.concatenate(probs), ids)


def score(preds: Predictions, classes: Sequence[str], head: Head, thresholds: np.ndarray | None, *,
          resamples: int, seed: int) -> dict[str, Any]:
    """``metrics_lib`` metrics of predictions, with ``mean_auc_ci`` (None where it cannot be bootstrapped).

    ``thresholds``: [K] operating thresholds of a multilabel head (unused for an exclusive head).
    """
    if head.exclusive:
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


def write_predictions(path: Path, preds: Predictions, classes: Sequence[str]) -> pd.DataFrame:
    """``predictions.csv`` (module docstring) of ``preds``; returns the written table."""
    table: dict[str, Any] = {"path": preds.paths, "patient": preds.patients}
    for name, values in preds.attributes.items():
        table[name] = pd.array(np.where(values < 0, np.nan, values), dtype="Int64") if values.dtype.kind == "i" \
            else values
    for k, name in enumerate(classes):
        table[columns.label(name)] = pd.array(np.where(preds.mask[:, k], preds.labels[:, k], np.nan), dtype="Int64")
        table[columns.probability(name)] = preds.probs[:, k].astype(np.float64)
    frame = pd.DataFrame(table)
    frame.to_csv(path, index=False, float_format="%.6f")
    return frame


def evaluate(run_dir: str | Path, *, split: str = "test", records: str | None = None,
             threshold: str | float = "youden", resamples: int = 1000, seed: int = 0, batch_size: int = 64,
             out: str | Path | None = None, noise_sweep: Sequence[str] = (), calibrate: str | None = None,
             bins: int = calibration.DEFAULT_BINS,
             at_specificity: Sequence[float] = operating_points.DEFAULT_SPECIFICITIES,
             at_sensitivity: Sequence[float] = operating_points.DEFAULT_SENSITIVITIES,
             gallery: int = errors.PER_CLASS, argv: Sequence[str] | None = None,
             verify: bool = False) -> EvaluationOutput:
    """Predict ``split`` with the run's best model, score it and write the files of the module docstring.

    Args:
        run_dir: a finished fit run directory.
        split: split to evaluate. records: records directory (default: the run's own), which must hold
            the run's classes (e.g. another dataset for external validation).
        threshold: ``youden`` | ``f1`` (chosen on ``val``) or a fixed probability.
        resamples: patient-bootstrap draws of the 95 % CIs (0: none). seed: seed of the draws and noise.
        batch_size: prediction batch. out: output directory (default ``<run>/eval/<split>``).
        noise_sweep: specs ``"gaussian:0,5,10"``: mean AUC per noise level (clean level: no noise).
        calibrate: ``temperature`` | ``platt``: fit on ``val``, save as the run's ``calibration.json`` and
            score calibrated probabilities; None: none (an earlier calibration is removed when the
            thresholds are chosen again, since they are chosen on uncalibrated probabilities then).
        bins: equal-count bins of the expected calibration error and reliability curves.
        at_specificity / at_sensitivity: operating-point targets (thresholds chosen on ``val``).
        gallery: most confident errors per class and kind in the gallery (0: no gallery).
        argv: the command's arguments, recorded in ``metrics.json["provenance"]``.
        verify: compare every shard's sha256 with dataset.json before reading.
    """
    from cxr_tf.records import info as records_info

    sweeps = _check_options(noise_sweep, at_specificity, at_sensitivity, calibrate)
    run = runs.load(run_dir)
    if calibrate == "platt" and run.head.exclusive:
        raise UserError(f"--calibrate platt: {run.path} is a single-label (softmax) run; use --calibrate temperature")
    records = records or run.config.records
    # Thresholds chosen by a method (not fixed) are chosen on the validation split, and saved with the run.
    choose = not run.head.exclusive and isinstance(threshold, str)
    check_records(run, records, [split, VAL_SPLIT] if choose or calibrate else [split], verify=verify)
    has_val = VAL_SPLIT in records_info.RecordsInfo.load(records).splits
    model = run.load_model()
    preds = predict(run, model, records, split, batch_size=batch_size, seed=seed)
    val = predict(run, model, records, VAL_SPLIT, batch_size=batch_size, seed=seed) if has_val else None
    raw_probs = preds.probs
    preds, val, fitted = _calibrate(run, preds, val, calibrate, forget=choose)
    thresholds, threshold_info = _operating_thresholds(run, val, threshold, choose)
    scores = score(preds, run.classes, run.head, thresholds, resamples=resamples, seed=seed)
    result: dict[str, Any] = {
        "run": str(run.path), "split": split, "records": str(records), "model": run.config.model,
        "task": scores.pop("task"), "examples": len(preds.paths),
        "patients": len(np.unique(preds.patients)), "threshold": threshold_info,
        "bootstrap": {"resamples": resamples, "seed": seed, "level": CI_LEVEL, "unit": "patient"},
        **scores,
    }
    result["calibration"] = calibration_metrics(preds, raw_probs, run.classes, bins, fitted)
    result["operating_points"] = _operating_points(preds, val, run.classes, at_specificity, at_sensitivity,
                                                   resamples=resamples, seed=seed)
    sweep_rows = [row for name, levels in sweeps for row in _noise_rows(
        run, model, records, split, name, levels, fitted, thresholds, batch_size=batch_size, resamples=resamples,
        seed=seed)]
    if sweeps:
        result["noise_sweep"] = sweep_rows
    directory = Path(out) if out else run.path / "eval" / split
    result = _write_outputs(directory, run, model, records, split, preds, thresholds, result, gallery,
                            resamples=resamples, seed=seed, argv=argv)
    if sweeps:
        _write_sweep(directory / "noise_sweep.csv", sweep_rows, run.classes)
    write_tensorboard(run, result, records)
    return EvaluationOutput(result, directory)


def _check_options(noise_sweep: Sequence[str], at_specificity: Sequence[float], at_sensitivity: Sequence[float],
                   calibrate: str | None) -> list[tuple[str, list[float]]]:
    """The parsed noise sweeps; a bad sweep, operating-point target or calibration method is a ``UserError``."""
    sweeps = [parse_sweep(spec) for spec in noise_sweep]
    bad = [t for t in (*at_specificity, *at_sensitivity) if not 0.0 < t < 1.0]
    if bad:
        raise UserError(f"--at-specificity/--at-sensitivity {bad[0]:g}: use values between 0 and 1, e.g. 0.9")
    if calibrate is not None:
        calibration.METHODS.check(calibrate, "--calibrate")
    return sweeps


def _calibrate(run: runs.Run, preds: Predictions, val: Predictions | None, method: str | None, *,
               forget: bool) -> tuple[Predictions, Predictions | None, dict[str, Any] | None]:
    """Fit ``method`` on ``val``, save it as the run's calibration and apply it to both splits.

    Without a method the predictions are returned as they are, and with ``forget`` (thresholds chosen
    again, on uncalibrated probabilities) an earlier calibration of the run is removed.

    Returns:
        (preds, val, the fitted calibration or None).
    """
    if method is None:
        if forget:
            run.save_calibration(None)
        return preds, val, None
    fitted = calibration.fit(val.labels, val.probs, method, run.head.name, run.classes, mask=val.mask)
    run.save_calibration(fitted)
    preds = dataclasses.replace(preds, probs=calibration.apply_numpy(preds.probs, fitted, run.classes))
    val = dataclasses.replace(val, probs=calibration.apply_numpy(val.probs, fitted, run.classes))
    return preds, val, fitted


def _operating_thresholds(run: runs.Run, val: Predictions | None, threshold: str | float,
                          choose: bool) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The [K] operating thresholds (None for an exclusive head, whose prediction is its top class) and
    ``metrics.json["threshold"]``; thresholds chosen on ``val`` are saved as the run's ``thresholds.json``."""
    if run.head.exclusive:
        return None, {"method": "argmax", "split": None}
    if not choose:
        return np.full(len(run.classes), float(threshold)), {"method": threshold, "split": None}
    thresholds = metrics_lib.choose_thresholds(val.labels, val.probs, threshold, val.mask)
    run.save_thresholds(dict(zip(run.classes, map(float, thresholds))), threshold, VAL_SPLIT)
    return thresholds, {"method": threshold, "split": VAL_SPLIT}


def _operating_points(preds: Predictions, val: Predictions | None, classes: Sequence[str],
                      at_specificity: Sequence[float], at_sensitivity: Sequence[float], *, resamples: int,
                      seed: int) -> dict[str, Any]:
    """``metrics.json["operating_points"]``: per class, thresholds chosen on ``val`` at each target
    specificity and sensitivity, scored on ``preds`` (none without a validation split)."""
    if val is None:
        return {"split": None, "classes": {}}
    return {"split": VAL_SPLIT, "classes": {
        name: operating_points.operating_points(
            val.labels[val.mask[:, k], k], val.probs[val.mask[:, k], k], preds.labels[preds.mask[:, k], k],
            preds.probs[preds.mask[:, k], k], preds.patients[preds.mask[:, k]], specificities=at_specificity,
            sensitivities=at_sensitivity, resamples=resamples, seed=seed, level=CI_LEVEL)
        for k, name in enumerate(classes)}}


def _noise_rows(run: runs.Run, model: Any, records: str, split: str, name: str, levels: Sequence[float],
                fitted: dict[str, Any] | None, thresholds: np.ndarray | None, *, batch_size: int, resamples: int,
                seed: int) -> list[dict[str, Any]]:
    """One ``metrics.json["noise_sweep"]`` row per level of noise ``name``: ``split`` predicted under that
    noise, calibrated with ``fitted`` and scored at ``thresholds``."""
    rows = []
    for level in levels:
        # The clean level goes through the same pipeline: noise.py returns the image untouched there.
        noisy = predict(run, model, records, split, noise=f"{name}:{level}", batch_size=batch_size, seed=seed)
        noisy = dataclasses.replace(noisy, probs=calibration.apply_numpy(noisy.probs, fitted, run.classes))
        at_level = score(noisy, run.classes, run.head, thresholds, resamples=resamples, seed=seed)
        rows.append({"noise": name, "level": level, "mean_auc": at_level["mean_auc"],
                     "mean_auc_ci": at_level["mean_auc_ci"],
                     "auc": {c: at_level["classes"][c]["auc"] for c in run.classes},
                     "accuracy": at_level.get("accuracy")})
    return rows


def _write_outputs(directory: Path, run: runs.Run, model: Any, records: str, split: str, preds: Predictions,
                   thresholds: np.ndarray | None, result: dict[str, Any], gallery: int, *, resamples: int,
                   seed: int, argv: Sequence[str] | None) -> dict[str, Any]:
    """Write ``predictions.csv``, the error gallery and ``metrics.json`` (``result`` with the subgroups,
    the gallery's count and the provenance added) into ``directory``; returns what ``metrics.json`` holds."""
    directory.mkdir(parents=True, exist_ok=True)
    frame = write_predictions(directory / "predictions.csv", preds, run.classes)
    result["subgroups"] = subgroups.subgroup_metrics(frame, run.classes, resamples=resamples, seed=seed,
                                                     level=CI_LEVEL)
    if gallery:
        shown = errors.gallery(model, run, records, split, preds, thresholds, directory, gallery)
        result["errors"] = {"per_class": gallery, "images": len(shown), "file": errors.INDEX_FILE}
    result["provenance"] = provenance.environment("evaluate", argv)
    result = _json_safe(result)
    (directory / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def write_tensorboard(run: runs.Run, result: dict[str, Any], records: str) -> None:
    """The split's mean AUC, per-class AUCs and accuracy in the run's TensorBoard log, under the names of the
    training curves (``epoch_mean_auc``, ``epoch_auc_<Class>``), at the run's last epoch, in ``tb/<split>``
    (``tb/<split>_<records folder>`` for records other than the run's own)."""
    from cxr_tf.training import tensorboard
    from cxr_tf.training.metrics import auc_name

    name = result["split"] if str(records) == str(run.config.records) else f"{result['split']}_{Path(records).name}"
    scalars = {"epoch_mean_auc": result.get("mean_auc"), "epoch_accuracy": result.get("accuracy"),
               **{f"epoch_{auc_name(c)}": result["classes"][c]["auc"] for c in run.classes}}
    tensorboard.write_scalars(tensorboard.log_dir(run.path, name), scalars, tensorboard.last_epoch(run.path))


def calibration_metrics(preds: Predictions, raw_probs: np.ndarray, classes: Sequence[str], bins: int,
                        fitted: dict[str, Any] | None) -> dict[str, Any]:
    """``metrics.json["calibration"]``: per class Brier, ECE and reliability curve of the scored
    probabilities and, when ``fitted`` (the scaling), the same of the ``raw_probs`` before it."""
    out: dict[str, Any] = {"bins": bins, "binning": "equal-count", "method": None, "classes": {}}
    if fitted is not None:
        out.update(method=fitted["method"], fitted_on=fitted["split"], parameters=fitted["classes"])
    for k, name in enumerate(classes):
        keep = preds.mask[:, k]
        y = preds.labels[keep, k]
        entry = calibration.class_calibration(y, preds.probs[keep, k], bins)
        if fitted is not None:
            entry["uncalibrated"] = calibration.class_calibration(y, raw_probs[keep, k], bins)
        out["classes"][name] = entry
    return out


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
