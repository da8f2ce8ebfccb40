"""The report of an evaluated run: ``runs/X/report.md`` and a self-contained ``runs/X/report.html``.

Reads what ``python -m cxr_tf.fit`` wrote (``config.toml``, ``dataset.json``, ``params.json``,
``history.csv``, ``timing.json``, ``provenance.json``), what ``python -m cxr_tf.evaluate`` wrote
(``eval/<split>/metrics.json``, ``predictions.csv``, ``errors.json`` and its overlays) and, when
``python -m cxr_tf.explain --records`` ran, ``explain/hit_rate.json`` and its overlays; nothing is
recomputed except the curves. Sections: run, data, metrics, curves, calibration, operating points,
subgroups, Grad-CAM, errors, training, noise, provenance; a run on synthetic phantoms opens with a
banner saying so (the reviewer's sections are built in ``sections.py``). The Markdown links its figures
(``report_files/`` and the overlays where evaluate and explain wrote them); the HTML inlines them
(``document.py``), so it can be mailed or attached as one file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxr_tf import reporting
from cxr_tf.training import runs
from cxr_tf.errors import UserError
from cxr_tf.evaluation import columns, plots
from cxr_tf.evaluation.document import Block, Image, Section, Table, to_html, to_markdown
from cxr_tf.evaluation.formatting import fmt, with_ci
from cxr_tf.evaluation.sections import (calibration_blocks, data_blocks, error_blocks, grad_cam_blocks,
                                        operating_point_blocks, phantom_source, provenance_blocks, read_json,
                                        roc_points, subgroup_blocks)

log = reporting.logger("report")

REPORT_FILES = "report_files"


@dataclass(frozen=True)
class EvaluatedRun:
    """A run and its evaluation on one split: everything a report or a comparison row is made of.

    ``history`` is ``history.csv`` (one row per epoch); ``timing``/``params`` are the parsed
    ``timing.json``/``params.json`` (None when fit did not write them).
    """

    run: runs.Run
    split: str
    metrics: dict[str, Any]
    predictions: pd.DataFrame
    history: pd.DataFrame | None
    timing: dict[str, Any] | None
    params: dict[str, dict[str, int]] | None

    @property
    def monitor(self) -> str:
        """The history column that chose the best epoch (``val_accuracy`` for single-label tasks)."""
        return self.run.monitor

    def best_epoch(self) -> int | None:
        """1-based epoch of the best ``monitor`` value (the first, on ties): the studies' epochs to best."""
        if self.history is None or self.monitor not in self.history:
            return None
        values = self.history[self.monitor].to_numpy(np.float64)
        return int(np.nanargmax(values)) + 1 if np.isfinite(values).any() else None


def load_evaluation(run_dir: str | Path, split: str = "test") -> EvaluatedRun:
    """Read a run directory and its ``eval/<split>/``; a split not yet evaluated is a ``UserError``."""
    run = runs.load(run_dir)
    eval_dir = run.path / "eval" / split
    for name in ("metrics.json", "predictions.csv"):
        if not (eval_dir / name).exists():
            raise UserError(f"{run.path}: no eval/{split}/{name}; run python -m cxr_tf.evaluate --run {run.path} "
                            f"--split {split} first")
    predictions = pd.read_csv(eval_dir / "predictions.csv")
    missing = [column(c) for c in run.classes for column in (columns.label, columns.probability)
               if column(c) not in predictions]
    if missing:
        raise UserError(f"{eval_dir / 'predictions.csv'}: no column(s) {', '.join(missing)}; re-run "
                        f"python -m cxr_tf.evaluate --run {run.path} --split {split}")
    history = pd.read_csv(run.path / "history.csv") if (run.path / "history.csv").exists() else None
    return EvaluatedRun(run, split, read_json(eval_dir / "metrics.json"), predictions, history,
                      read_json(run.path / "timing.json"), read_json(run.path / "params.json"))


# ---------------------------------------------------------------------------------------------------------
# Sections.


def _schedule(cfg: Any) -> str:
    if cfg.schedule == "cyclic":
        return (f"cyclic {cfg.clr_mode} ({min(cfg.base_lr, cfg.lr):g} to {cfg.lr:g}, half-cycle "
                f"{cfg.step_size_epochs:g} epochs)")
    if cfg.schedule == "cosine":
        return f"cosine from {cfg.lr:g} (warm-up {cfg.warmup_epochs:g} epochs)"
    return cfg.schedule


def summary(ev: EvaluatedRun) -> Table:
    """The run at a glance: data, label policy, model, optimisation, training length and cost, evaluation."""
    cfg, m = ev.run.config, ev.metrics
    two_phase = cfg.freeze == "backbone"
    planned = cfg.epochs + (cfg.fine_tune_epochs if two_phase else 0)
    epochs = f"{0 if ev.history is None else len(ev.history)} of {planned}"
    if two_phase:
        epochs += f" ({cfg.epochs} on a frozen backbone, then {cfg.fine_tune_epochs} fine-tuning)"
    best = ev.best_epoch()
    if best is not None:
        best = f"{best} ({ev.monitor} {fmt(float(ev.history[ev.monitor].iloc[best - 1]), 4)})"
    optimizer = f"{cfg.optimizer}, lr {cfg.lr:g}"
    optimizer += f", weight decay {cfg.weight_decay:g}" if cfg.weight_decay else ""
    optimizer += f"; fine-tuning lr {cfg.fine_tune_lr:g}" if two_phase else ""
    params = "; ".join(f"{phase}: {p['total']:,} total, {p['trainable']:,} trainable"
                       for phase, p in (ev.params or {}).items())
    timing = ev.timing or {"epochs": []}
    seconds = timing.get("mean_seconds_per_epoch")
    speed = np.mean([e["images_per_second"] for e in timing["epochs"]]) if timing["epochs"] else None
    threshold, boot = m["threshold"], m["bootstrap"]
    dropped = {c: e["bootstrap_dropped"] for c, e in m["classes"].items() if e.get("bootstrap_dropped")}
    rows = [
        ["run", str(ev.run.path)],
        ["model", f"{cfg.model} (weights: {cfg.weights})"],
        ["records", str(m["records"])],
        ["task", f"{m['task']} (head {ev.run.head.name})"],
        ["classes", ", ".join(ev.run.classes)],
        ["label policy", f"uncertain: {cfg.uncertainty}, blank: {cfg.blank}, label tree: {cfg.propagate_parents}"],
        ["image size", f"{cfg.image_size} px"],
        ["channels", cfg.input_channels],
        ["loss", cfg.loss],
        ["optimizer", optimizer],
        ["schedule", _schedule(cfg)],
        ["batch size", str(cfg.batch_size)],
        ["epochs", epochs],
        ["best epoch", best or "n/a"],
        ["parameters", params or "n/a"],
        ["time per epoch", "n/a" if seconds is None else f"{seconds:.1f} s"],
        ["images/s", fmt(speed, 1)],
        ["evaluated on", f"{ev.split}: {m['examples']} images, {m['patients']} patients"],
        ["thresholds", str(threshold["method"]) + (f" (chosen on {threshold['split']})" if threshold["split"] else "")],
        ["confidence intervals", f"{boot['level']:.0%} percentile, {boot['resamples']} {boot['unit']}-level "
                                 f"bootstrap resamples (seed {boot['seed']}); dropped for lacking positives or "
                                 "negatives: " + (", ".join(f"{c} {n}" for c, n in dropped.items()) or "none")],
    ]
    return Table(["", "value"], rows, numeric=False)


def metric_blocks(metrics: dict[str, Any]) -> list[Block]:
    """Per-class table, mean AUC, micro/macro averages; accuracy and confusion matrix when single-label.

    A multilabel task's confusion counts are drawn (``figures``), not tabulated a second time."""
    classes = metrics["classes"]
    if metrics["task"] == "multiclass":
        per_class = Table(["class", "n", "AUC [95 % CI]", "precision", "recall", "F1"],
                          [[name, str(c["n"]), with_ci(c.get("auc"), c.get("auc_ci")), fmt(c["precision"]),
                            fmt(c["recall"]), fmt(c["f1"])] for name, c in classes.items()])
    else:
        per_class = Table(["class", "n", "positives", "AUC [95 % CI]", "AP [95 % CI]", "threshold", "sensitivity",
                           "specificity", "PPV", "NPV", "F1"],
                          [[name, str(c["n"]), str(c["positives"]), with_ci(c.get("auc"), c.get("auc_ci")),
                            with_ci(c.get("ap"), c.get("ap_ci")), fmt(c["threshold"]),
                            *(with_ci(c[rate], c.get(f"{rate}_ci")) for rate in ("sensitivity", "specificity", "ppv",
                                                                                 "npv", "f1"))]
                           for name, c in classes.items()])
    blocks: list[Block] = [per_class, f"Mean AUC: {with_ci(metrics.get('mean_auc'), metrics.get('mean_auc_ci'))}"]
    blocks.append(Table(["average", "precision", "recall", "F1"],
                        [[avg, fmt(metrics[avg]["precision"]), fmt(metrics[avg]["recall"]), fmt(metrics[avg]["f1"])]
                         for avg in ("micro", "macro")]))
    if metrics["task"] == "multiclass":
        blocks.append(f"Accuracy: {fmt(metrics['accuracy'])}")
        blocks.append(Table(["true \\ predicted", *classes],
                            [[name, *map(str, row)] for name, row in zip(classes, metrics["confusion"])]))
    return blocks


def noise_table(metrics: dict[str, Any]) -> Table:
    """One row per (noise, level) of ``metrics.json["noise_sweep"]``: mean AUC [CI], per-class AUC, accuracy."""
    classes = list(metrics["classes"])
    entries = metrics["noise_sweep"]
    accuracy = any(e.get("accuracy") is not None for e in entries)  # multilabel sweeps carry None
    return Table(["noise", "level", "mean AUC [95 % CI]", *classes] + (["accuracy"] if accuracy else []),
                 [[e["noise"], f"{e['level']:g}", with_ci(e.get("mean_auc"), e.get("mean_auc_ci")),
                   *(fmt(e.get("auc", {}).get(c)) for c in classes)] + ([fmt(e.get("accuracy"))] if accuracy else [])
                  for e in entries])


def figures(ev: EvaluatedRun, out_dir: Path) -> dict[str, Image]:
    """ROC (with patient-bootstrap bands), PR, confusion, training and noise-sweep figures, saved in ``out_dir``.

    Returns:
        name (``roc``, ``pr``, ``reliability``, ``confusion``, ``training``, ``noise_sweep``) -> image, for
        the figures the run has data for.
    """
    m, pred = ev.metrics, ev.predictions
    boot = m["bootstrap"]
    labels, scores, patients = {}, {}, {}
    for name in ev.run.classes:
        keep = pred[columns.label(name)].notna().to_numpy()  # masked labels (U-Ignore) are left out, as in metrics
        labels[name] = pred.loc[keep, columns.label(name)].to_numpy().astype(int)
        scores[name] = pred.loc[keep, columns.probability(name)].to_numpy(np.float64)
        patients[name] = pred.loc[keep, "patient"].to_numpy()
    scorable = [c for c in ev.run.classes if 0 < labels[c].sum() < len(labels[c])]
    made: list[tuple[str, str, Any]] = []
    if scorable:
        bands = {c: plots.roc_band(labels[c], scores[c], patients[c], resamples=boot["resamples"],
                                   seed=boot["seed"], level=boot["level"]) for c in scorable}
        auc_titles = {c: f"{c}\nAUC {with_ci(m['classes'][c].get('auc'), m['classes'][c].get('auc_ci'))}"
                      for c in scorable}
        made.append(("roc", "ROC curves with 95 % patient-bootstrap bands; markers: operating points on this split",
                     plots.roc_curves(bands, auc_titles, roc_points(m))))
        # Multiclass metrics have no AP (the studies report none); the panel is then titled by class only.
        ap_titles = {c: f"{c}\nAP {fmt(m['classes'][c]['ap'])}" for c in scorable if "ap" in m["classes"][c]}
        made.append(("pr", "precision-recall curves (dotted: prevalence)",
                     plots.pr_curves({c: labels[c] for c in scorable}, scores, ap_titles)))
    curves = (m.get("calibration") or {}).get("classes")
    if curves:
        titles = {c: f"{c}\nECE {fmt(e['ece'])}, Brier {fmt(e['brier'])}" for c, e in curves.items()}
        made.append(("reliability", f"reliability diagrams ({m['calibration']['bins']} equal-count bins)",
                     plots.reliability(curves, titles)))
    if m["task"] == "multiclass":
        made.append(("confusion", "confusion matrix", plots.confusion_matrix(m["confusion"], list(m["classes"]))))
    else:
        made.append(("confusion", "confusion matrices at the operating thresholds",
                     plots.binary_confusions({c: e["confusion"] for c, e in m["classes"].items()})))
    if ev.history is not None:
        made.append(("training", "training curves (dotted line: best epoch), learning rate, time per epoch",
                     plots.training_curves(ev.history, ev.run.classes, ev.monitor, ev.timing)))
    if m.get("noise_sweep"):
        made.append(("noise_sweep", "mean AUC against noise level", plots.noise_sweep(m["noise_sweep"])))
    out_dir.mkdir(parents=True, exist_ok=True)
    return {name: Image(f"{REPORT_FILES}/{name}.png", caption, plots.save_png(fig, out_dir / f"{name}.png"))
            for name, caption, fig in made}


def write_report(run_dir: str | Path, split: str = "test") -> tuple[Path, Path]:
    """Write ``report.md`` (figures in ``report_files/``) and the self-contained ``report.html`` of a run.

    Args:
        run_dir: a finished fit run whose ``split`` was evaluated (``eval/<split>/metrics.json`` and
            ``predictions.csv``); otherwise a ``UserError`` says to run ``python -m cxr_tf.evaluate``.

    Returns:
        (path of report.md, path of report.html), both in ``run_dir``.
    """
    return write(load_evaluation(run_dir, split))


def write(ev: EvaluatedRun) -> tuple[Path, Path]:
    """``write_report`` of an already loaded evaluation."""
    start, split = time.perf_counter(), ev.split
    images = figures(ev, ev.run.path / REPORT_FILES)
    sections: list[Section] = [
        ("Run", [summary(ev)]),
        ("Data", data_blocks(ev.run.info, ev.run.classes)),
        (f"Metrics ({split} split)", metric_blocks(ev.metrics)),
        ("Curves and confusion", [images[n] for n in ("roc", "pr", "confusion") if n in images]),
        ("Calibration", calibration_blocks(ev.metrics, images.get("reliability"))),
        ("Operating points", operating_point_blocks(ev.metrics)),
        ("Subgroups", subgroup_blocks(ev.metrics)),
        ("Grad-CAM", grad_cam_blocks(ev)),
        ("Errors", error_blocks(ev)),
    ]
    if "training" in images:
        sections.append(("Training", [images["training"]]))
    if "noise_sweep" in images:
        sections.append(("Robustness to noise", [noise_table(ev.metrics), images["noise_sweep"]]))
    sections.append(("Provenance", provenance_blocks(ev)))
    phantoms = phantom_source(ev.run.info)
    banner = None if phantoms is None else (
        f"Synthetic data: these records were built from phantoms generated by python -m cxr_tf.synth ({phantoms}); "
        "the numbers show the pipeline works, not how a model performs on radiographs.")
    title = f"Report: {ev.run.path.name} ({ev.run.config.model}, {split} split)"
    md_path, html_path = ev.run.path / "report.md", ev.run.path / "report.html"
    md_path.write_text(to_markdown(title, sections, banner))
    html_path.write_text(to_html(title, sections, banner))
    log.info("%s: report written in %.1f s", ev.run.path, time.perf_counter() - start)
    return md_path, html_path
