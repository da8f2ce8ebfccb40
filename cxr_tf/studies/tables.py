"""A study's own tables, in its own layout, from its evaluated arms, beside the figures it reported.

``write`` reads each arm's run and ``eval/test`` (``evaluation.report.load_evaluation``: nothing is
recomputed), lays out the study's tables (``LAYOUTS``, one function per study), and writes
``study.md`` (figures in ``study_files/``), the self-contained ``study.html`` and ``table.csv`` (one row
per arm) with ``evaluation.report``'s renderers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from cxr_tf.evaluation import plots
from cxr_tf.evaluation.formatting import fmt
from cxr_tf.evaluation.report import EvaluatedRun, Image, Section, Table, load_evaluation, to_html, to_markdown
from cxr_tf.io import atomic
from cxr_tf.registry import Registry
from cxr_tf.studies import reported
from cxr_tf.studies.grids import Arm, Study
from cxr_tf.studies.runner import EVAL_SPLIT

FILES = "study_files"
REPORTED = "reported by the study"


@dataclass(frozen=True)
class ArmEvaluation:
    """An arm and what its run and evaluation wrote."""

    arm: Arm
    ev: EvaluatedRun

    @property
    def seconds(self) -> float:
        """Training wall time of the run, summed over its epochs (both phases, across resumes)."""
        return float(sum(e["seconds"] for e in (self.ev.timing or {"epochs": []})["epochs"]))

    @property
    def seconds_per_epoch(self) -> float | None:
        return (self.ev.timing or {}).get("mean_seconds_per_epoch")

    @property
    def trainable(self) -> int | None:
        """Trainable parameters of the run's first (or only) phase: S3's figure, frozen blocks excluded."""
        params = self.ev.params or {}
        return next(iter(params.values()))["trainable"] if params else None

    @property
    def enhanced(self) -> bool:
        return self.ev.run.config.input_channels == "enhance"

    def summed_confusion(self) -> tuple[int, int, int, int]:
        """(TP, FN, TN, FP) summed over the classes of a multilabel task (S1 Table 2)."""
        total = np.sum([c["confusion"] for c in self.ev.metrics["classes"].values()], axis=0)
        (tn, fp), (fn, tp) = total.tolist()
        return tp, fn, tn, fp

    def accuracy(self) -> float:
        """Single-label: accuracy. Multilabel: share of correct (image, class) decisions, S1's "Accuracy"
        (its Table 1 value is (TP + TN) / all of its Table 2)."""
        if self.ev.metrics["task"] == "multiclass":
            return float(self.ev.metrics["accuracy"])
        tp, fn, tn, fp = self.summed_confusion()
        return (tp + tn) / max(1, tp + fn + tn + fp)


def load(out: Path, arms: Sequence[Arm]) -> list[ArmEvaluation]:
    return [ArmEvaluation(arm, load_evaluation(out / arm.name, EVAL_SPLIT)) for arm in arms]


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.2f} minutes"


def runs_table(items: Sequence[ArmEvaluation]) -> Table:
    """How each arm ran: recipe, model, weights, input, epochs, determinism, time."""
    rows = []
    for item in items:
        cfg = item.ev.run.config
        planned = cfg.epochs + (cfg.fine_tune_epochs if cfg.freeze == "backbone" else 0)
        run = 0 if item.ev.history is None else len(item.ev.history)
        rows.append([item.arm.name, item.arm.recipe, cfg.model, cfg.weights,
                     f"{cfg.image_size} px, {cfg.input_channels}", f"{run} of {planned}", str(item.ev.best_epoch() or "n/a"), _yes(cfg.deterministic),
                     _minutes(item.seconds)])
    return Table(["arm", "recipe", "model", "weights", "input", "epochs", "best epoch", "deterministic",
                  "training time"], rows, numeric=False)


def csv_rows(study: Study, items: Sequence[ArmEvaluation], phantoms: bool) -> pd.DataFrame:
    """``table.csv``: one row per arm, the figures of every table of the study plus how the arm ran."""
    rows = []
    for item in items:
        cfg, m = item.ev.run.config, item.ev.metrics
        row: dict[str, Any] = {
            "study": study.name, "arm": item.arm.name, "label": item.arm.label, "recipe": item.arm.recipe,
            "model": cfg.model, "weights": cfg.weights, "channels": cfg.input_channels,
            "freeze": cfg.freeze, "freeze_stages": cfg.freeze_stages, "image_size": cfg.image_size,
            "deterministic": cfg.deterministic, "phantoms": phantoms,
            "epochs": 0 if item.ev.history is None else len(item.ev.history), "best_epoch": item.ev.best_epoch(),
            "seconds": round(item.seconds, 3), "seconds_per_epoch": item.seconds_per_epoch,
            "trainable_params": item.trainable, "examples": m["examples"], "mean_auc": m["mean_auc"],
            "accuracy": item.accuracy(),
        }
        for average in ("micro", "macro"):
            row.update({f"{average}_{k}": m[average][k] for k in ("precision", "recall", "f1")})
        if m["task"] != "multiclass":
            row.update(zip(("tp", "fn", "tn", "fp"), item.summed_confusion()))
        row.update({f"auc_{name}": c["auc"] for name, c in m["classes"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# One layout per study.

Layout = Callable[[Sequence[ArmEvaluation], Path], list[Section]]
LAYOUTS: Registry[Layout] = Registry("study layout")


def _enh(value: bool) -> str:
    return "True" if value else "False"


@LAYOUTS.register("s1")
def s1_tables(items: Sequence[ArmEvaluation], files: Path) -> list[Section]:
    """Table 1 (AUCs, accuracy), Table 2 (summed confusion), per-model confusion and TPR/TNR/F-score, time."""
    classes = list(items[0].ev.metrics["classes"])
    table1 = Table(["Model Name", "Enhancement layers", "Multilabel AUC", *(f"{c} AUC" for c in classes), "Accuracy"],
                   [[i.arm.label, _enh(i.enhanced), fmt(i.ev.metrics["mean_auc"]),
                     *(fmt(c["auc"]) for c in i.ev.metrics["classes"].values()), fmt(i.accuracy())] for i in items])
    table1_reported = Table(["Model Name", "Enhancement layers", "Multilabel AUC",
                             *(f"{c} AUC" for c in reported.S1_CLASSES), "Accuracy"],
                            [[m, _enh(e), fmt(auc, 2), *(fmt(a) for a in aucs), fmt(acc)]
                             for m, e, auc, aucs, acc in reported.S1_TABLE1])
    confusion_header = ["Model Name", "Enhancement layers", "True Positives", "False Negatives", "True Negatives",
                        "False Positives"]
    table2 = Table(confusion_header, [[i.arm.label, _enh(i.enhanced), *map(str, i.summed_confusion())] for i in items])
    table2_reported = Table(confusion_header, [[m, _enh(e), *map(str, counts)] for m, e, *counts in reported.S1_TABLE2])
    sections: list[Section] = [
        ("Table 1: model architectures with their respective AUC values",
         [table1, f"Table 1 as {REPORTED} (its fifth AUC column is headed \"Pneumothorax\"):", table1_reported]),
        ("Table 2: model architectures with their respective summed confusion matrices",
         [table2, f"Table 2 as {REPORTED}:", table2_reported]),
    ]
    for item in items:
        key = (item.arm.label, item.enhanced)
        name = f"{item.arm.label} {'with' if item.enhanced else 'no'} enhancement layers"
        per_class = item.ev.metrics["classes"]
        cells = [[f"TP = {c['confusion'][1][1]}  FP = {c['confusion'][0][1]}" for c in per_class.values()],
                 [f"FN = {c['confusion'][1][0]}  TN = {c['confusion'][0][0]}" for c in per_class.values()]]
        blocks: list[Any] = [Table(list(per_class), cells)]
        if key in reported.S1_CONFUSIONS:
            blocks += [f"As {REPORTED}:", Table(list(reported.S1_CLASSES),
                       [[f"TP = {tp}  FP = {fp}" for tp, fp, _, _ in reported.S1_CONFUSIONS[key]],
                        [f"FN = {fn}  TN = {tn}" for _, _, fn, tn in reported.S1_CONFUSIONS[key]]])]
        rates = [[c["sensitivity"] for c in per_class.values()], [c["specificity"] for c in per_class.values()],
                 [c["f1"] for c in per_class.values()]]
        names = ("True Positive Rate", "True Negative Rate", "F-score")
        blocks.append(Table(["", *per_class, "Average"],
                            [[n, *map(fmt, r), fmt(float(np.mean([v for v in r if v is not None])))]
                             for n, r in zip(names, rates)]))
        if key in reported.S1_RATES:
            blocks += [f"As {REPORTED}:", Table(["", *reported.S1_CLASSES, "Average"],
                       [[n, *map(str, r)] for n, r in zip(names, reported.S1_RATES[key])])]
        sections.append((f"{name}: separate confusion matrices and metrics (threshold "
                         f"{per_class[next(iter(per_class))]['threshold']:g})", blocks))
    epochs = {i.ev.run.config.epochs for i in items}
    times = Table(["Model Name", f"Time for {'/'.join(map(str, sorted(epochs)))} epochs"],
                  [[f"{i.arm.label} {'with' if i.enhanced else 'without'} Enhancement Layers", _minutes(i.seconds)]
                   for i in items], numeric=False)
    times_reported = Table(["Model Name", "Time for 34 epochs (one Nvidia Titan Xp)"],
                           [[f"{m} {'with' if e else 'without'} Enhancement Layers", _minutes(60 * minutes)]
                            for (m, e), minutes in reported.S1_MINUTES.items()], numeric=False)
    sections.append(("Time per run", [times, f"As {REPORTED}:", times_reported]))
    return sections


@LAYOUTS.register("s2")
def s2_tables(items: Sequence[ArmEvaluation], files: Path) -> list[Section]:
    """Precision / recall / F1 per model (micro averages over the classes), and mean AUC under test noise."""
    table = Table(["Model", "training noise", "Precision", "Recall", "F1Score"],
                  [[i.arm.label, " ".join(i.ev.run.config.noise) or "none", fmt(i.ev.metrics["micro"]["precision"]),
                    fmt(i.ev.metrics["micro"]["recall"]), fmt(i.ev.metrics["micro"]["f1"])] for i in items])
    table_reported = Table(["Model", "Precision", "Recall", "F1Score"],
                           [[m, *(fmt(v, 2) for v in values)] for m, *values in reported.S2_TABLE])
    sweeps = [(i, e) for i in items for e in i.ev.metrics.get("noise_sweep", [])]
    levels = list(dict.fromkeys((e["noise"], e["level"]) for _, e in sweeps))
    noise = Table(["Model", *(f"{n}:{level:g}" for n, level in levels)],
                  [[i.arm.label, *(fmt(next((e["mean_auc"] for j, e in sweeps if j is i and (e["noise"], e["level"])
                                             == key), None)) for key in levels)] for i in items])
    return [("Precision, recall and F1 per model (test split)", [table, f"As {REPORTED}:", table_reported]),
            ("Mean AUC with noise in the test images", [noise, "The study reports no per-level figure."])]


@LAYOUTS.register("s3")
def s3_tables(items: Sequence[ArmEvaluation], files: Path) -> list[Section]:
    """Micro-recall, epochs to converge, time per epoch and trainable parameters against frozen blocks."""
    rows = [[i.arm.label, str(i.ev.run.config.freeze_stages), fmt(i.ev.metrics["micro"]["recall"]),
             str(i.ev.best_epoch() or "n/a"), fmt(i.seconds_per_epoch, 2),
             "n/a" if i.trainable is None else f"{i.trainable:,}"] for i in items]
    table = Table(["Model", "Frozen blocks", "Micro-Recall", "Epochs to converge", "Time per epoch (s)",
                   "Trainable parameters"], rows)
    found = Table(["Model", "Frozen blocks", "Micro-Recall"], [list(r) for r in reported.S3_FINDINGS], numeric=False)
    image = Image(f"{FILES}/frozen_blocks.png", "micro-recall, time per epoch and trainable parameters against "
                  "frozen blocks", plots.save_png(frozen_blocks_figure(items), files / "frozen_blocks.png"))
    return [("Frozen blocks: recall, convergence, time and parameters", [table, image]),
            (REPORTED.capitalize(), [found])]


def frozen_blocks_figure(items: Sequence[ArmEvaluation]) -> Any:
    """Three panels against frozen blocks (0-4): micro-recall, seconds per epoch, trainable parameters;
    one line per model (a model run at one setting only is a single point)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    metrics = (("micro-recall", lambda i: i.ev.metrics["micro"]["recall"]),
               ("time per epoch (s)", lambda i: i.seconds_per_epoch),
               ("trainable parameters", lambda i: i.trainable))
    for ax, (title, value) in zip(axes, metrics):
        for label in dict.fromkeys(i.arm.label for i in items):
            mine = [i for i in items if i.arm.label == label]
            ax.plot([i.ev.run.config.freeze_stages for i in mine], [value(i) for i in mine], marker="o", label=label)
        ax.set_xlabel("frozen blocks")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(5))
    axes[0].legend(fontsize=7)
    return fig


def _accuracy_section(items: Sequence[ArmEvaluation], figures: Sequence[tuple[str, str]],
                      files: Path) -> list[Section]:
    table = Table(["Model", "Test accuracy"], [[i.arm.label, fmt(i.accuracy())] for i in items])
    found = Table(["Model", "Test accuracy"], [list(r) for r in figures], numeric=False)
    confusions: list[Any] = []
    for item in items:
        m = item.ev.metrics
        classes = list(m["classes"])
        confusions += [f"{item.arm.label} ({item.arm.name}):",
                       Table(["true \\ predicted", *classes],
                             [[c, *map(str, r)] for c, r in zip(classes, m["confusion"])]),
                       Image(f"{FILES}/confusion_{item.arm.name}.png", f"{item.arm.label}: confusion matrix",
                             plots.save_png(plots.confusion_matrix(m["confusion"], classes),
                                            files / f"confusion_{item.arm.name}.png"))]
    return [("Test accuracy", [table, f"As {REPORTED}:", found]), ("Confusion matrices (test split)", confusions)]


@LAYOUTS.register("s4")
def s4_tables(items: Sequence[ArmEvaluation], files: Path) -> list[Section]:
    """Test accuracy per model and each model's confusion matrix."""
    return _accuracy_section(items, reported.S4_ACCURACY, files)


@LAYOUTS.register("s5")
def s5_tables(items: Sequence[ArmEvaluation], files: Path) -> list[Section]:
    """Test accuracy (and the confusion matrix)."""
    return _accuracy_section(items, reported.S5_ACCURACY, files)


# ---------------------------------------------------------------------------------------------------------


def write(study: Study, out: Path, arms: Sequence[Arm], *, phantoms: bool) -> tuple[Path, Path, Path]:
    """Write ``study.md``, ``study.html`` and ``table.csv`` of the evaluated ``arms`` into ``out``.

    Returns:
        (study.md, study.html, table.csv) paths.
    """
    items = load(out, arms)
    files = out / FILES
    files.mkdir(parents=True, exist_ok=True)
    note = ("Data: PHANTOMS (python -m cxr_tf.synth in the study's layout), on a reduced grid (small images, "
            "few epochs); every figure below is the phantoms', not the study's data's."
            if phantoms else "Data: the records given with --records.")
    if any(i.ev.run.config.weights == "none" for i in items):
        note += (" Arms with weights \"none\" started from random weights, not the study's ImageNet ones, so "
                 "whatever they freeze stays random.")
    sections: list[Section] = [("Runs", [note, runs_table(items)]), *LAYOUTS.get(study.name)(items, files)]
    title = f"{study.title}{' (phantoms)' if phantoms else ''}"
    paths = out / "study.md", out / "study.html", out / "table.csv"
    atomic.write_text(str(paths[0]), to_markdown(title, sections))
    atomic.write_text(str(paths[1]), to_html(title, sections))
    buffer = io.StringIO()
    csv_rows(study, items, phantoms).to_csv(buffer, index=False, float_format="%.6g")
    atomic.write_text(str(paths[2]), buffer.getvalue())
    return paths
