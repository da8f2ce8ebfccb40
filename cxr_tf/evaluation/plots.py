"""Figures of a run's report: ROC and PR curves, confusion matrices, reliability diagrams, training
curves, noise sweeps.

Every function returns a ``matplotlib.figure.Figure`` drawn on its own Agg canvas, never through pyplot:
pyplot keeps every figure in a global registry, which leaks memory (and state between tests) when one
process writes many reports. Panels are small and PNGs are written at ``DPI`` so a report renders in
seconds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn import metrics as skm

from cxr_tf.evaluation import bootstrap

DPI = 90
PANEL = (3.0, 2.7)  # inches per subplot: small PNGs, still legible in a browser
MAX_COLUMNS = 4
FPR_GRID = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class RocBand:
    """A ROC curve read at fixed false-positive rates, with its patient-bootstrap percentile band.

    All arrays are float64 [G] in [0, 1]: ``fpr`` the grid, ``tpr`` the curve of the data itself,
    ``low``/``high`` the percentiles of the resampled curves' TPR at each grid point.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    low: np.ndarray
    high: np.ndarray


def roc_band(y: np.ndarray, score: np.ndarray, patients: np.ndarray, *, resamples: int = 1000, seed: int = 0,
             level: float = 0.95, grid: np.ndarray = FPR_GRID) -> RocBand:
    """ROC curve of one class with a bootstrap band, resampling patients like the AUC intervals.

    The TPR at a grid FPR ``f`` is the best TPR among thresholds whose FPR is at most ``f`` (the step
    curve read from above), so the point curve and every resampled curve are read the same way.

    Args:
        y: [N] 0/1 labels. score: [N] probabilities. patients: [N] patient ids (any dtype).
        resamples: bootstrap draws (``bootstrap.patient_weights``: for the same seed, the draws behind the
            intervals of ``metrics.json``). level: coverage of the band. grid: [G] ascending FPRs in [0, 1].
    """
    y, score = np.asarray(y).astype(bool), np.asarray(score, np.float64)
    order = np.argsort(-score, kind="mergesort")
    y_sorted, s = y[order], score[order]
    # One threshold admits a whole tie group, so the curve has a point only at each group's last image.
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
    point = _tpr_on_grid(np.ones((1, len(y)), np.int32), y_sorted, ends, grid)[0]
    blocks = [_tpr_on_grid(w[:, order], y_sorted, ends, grid)
              for w in bootstrap.patient_weights(np.asarray(patients), resamples, seed)]
    draws = np.concatenate(blocks) if blocks else point[None]  # no resamples: the band is the curve
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(draws, [tail, 100.0 - tail], axis=0)
    return RocBand(np.asarray(grid, np.float64), point, low, high)


def _tpr_on_grid(weights: np.ndarray, y_sorted: np.ndarray, ends: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """[R, G] TPR at each grid FPR for each weight row ([R, N], images in descending score order).

    NaN rows: the resample drew no positive or no negative.
    """
    pos = np.cumsum(weights * y_sorted, axis=1)[:, ends]
    neg = np.cumsum(weights * ~y_sorted, axis=1)[:, ends]
    out = np.full((len(weights), len(grid)), np.nan)
    for r in range(len(weights)):
        if pos[r, -1] == 0 or neg[r, -1] == 0:
            continue
        tpr = np.r_[0.0, pos[r] / pos[r, -1]]
        fpr = np.r_[0.0, neg[r] / neg[r, -1]]
        out[r] = tpr[np.searchsorted(fpr, grid, side="right") - 1]
    return out


def _figure(panels: int, panel: tuple[float, float] = PANEL, *,
            fit_labels: bool = False) -> tuple[Figure, list[Any]]:
    """A figure on an Agg canvas with ``panels`` subplots in rows of at most ``MAX_COLUMNS``.

    Margins are fixed in inches (room for two-line titles, axis labels and a second y axis):
    matplotlib's constrained layout measures every label and costs 2-3x the drawing itself. With
    ``fit_labels`` (labels of unknown length, e.g. class names as ticks) the layout measures them.
    """
    cols = min(panels, MAX_COLUMNS)
    rows = -(-panels // cols)
    width, height = panel[0] * cols, panel[1] * rows
    fig = Figure(figsize=(width, height), layout="constrained" if fit_labels else None)
    FigureCanvasAgg(fig)
    if not fit_labels:
        left, right, top, bottom, gap_w, gap_h = 0.6, 0.15, 0.45, 0.5, 0.85, 0.9  # inches
        axes_w = (width - left - right - (cols - 1) * gap_w) / cols
        axes_h = (height - top - bottom - (rows - 1) * gap_h) / rows
        fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                            bottom=bottom / height, wspace=gap_w / axes_w, hspace=gap_h / axes_h)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, list(axes[:panels])


def save_png(fig: Figure, path: Path) -> bytes:
    """Write ``fig`` as a PNG at ``DPI`` to ``path``; returns the PNG bytes (for inlining in HTML)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    data = buffer.getvalue()
    Path(path).write_bytes(data)
    return data


def roc_curves(bands: Mapping[str, RocBand], titles: Mapping[str, str],
               points: Mapping[str, Sequence[tuple[float, float, str]]] | None = None) -> Figure:
    """One panel per class: the ROC curve, its shaded bootstrap band, the chance diagonal and the
    operating points ``points[class]``: (1 - specificity, sensitivity, label) on the scored split."""
    fig, axes = _figure(len(bands))
    markers = ("o", "s", "^", "D", "v", "P")
    for ax, (name, band) in zip(axes, bands.items()):
        ax.fill_between(band.fpr, band.low, band.high, step="post", alpha=0.3, label="95 % CI")
        ax.step(band.fpr, band.tpr, where="post", lw=1.5, label="ROC")
        ax.plot([0, 1], [0, 1], ls=":", c="gray", lw=0.8)
        for (fpr, tpr, label), marker in zip((points or {}).get(name, ()), markers):
            ax.plot([fpr], [tpr], marker=marker, ls="none", ms=5, mfc="none", mew=1.2, label=label)
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity (FPR)", ylabel="sensitivity (TPR)")
        ax.set_title(titles.get(name, name), fontsize=8)
    axes[0].legend(loc="lower right", fontsize=6)
    return fig


def reliability(curves: Mapping[str, Mapping[str, Any]], titles: Mapping[str, str]) -> Figure:
    """Reliability diagrams, one panel per class: positive fraction against mean probability per
    equal-count bin (``calibration.Reliability.to_json``), the diagonal of perfect calibration and,
    given ``"uncalibrated"`` curves, those before scaling.

    Args:
        curves: class -> ``{"curve": {...}, "uncalibrated": {"curve": {...}} (optional)}``.
    """
    fig, axes = _figure(len(curves))
    for ax, (name, entry) in zip(axes, curves.items()):
        ax.plot([0, 1], [0, 1], ls=":", c="gray", lw=0.8)
        if entry.get("uncalibrated"):
            before = entry["uncalibrated"]["curve"]
            ax.plot(before["mean_prob"], before["frac_pos"], marker=".", c="tab:gray", lw=1, label="before scaling")
        ax.plot(entry["curve"]["mean_prob"], entry["curve"]["frac_pos"], marker="o", ms=3, lw=1.5, label="model")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="mean predicted probability", ylabel="fraction positive")
        ax.set_title(titles.get(name, name), fontsize=8)
    axes[0].legend(loc="upper left", fontsize=7)
    return fig


def pr_curves(labels: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray],
              titles: Mapping[str, str]) -> Figure:
    """One panel per class: the precision-recall curve and the prevalence (a random classifier's PPV).

    Args:
        labels: class -> [N] 0/1 labels. scores: class -> [N] probabilities. titles: class -> panel title.
    """
    fig, axes = _figure(len(labels))
    for ax, name in zip(axes, labels):
        y = labels[name]
        precision, recall, _ = skm.precision_recall_curve(y, scores[name])
        ax.step(recall, precision, where="post", lw=1.5)
        ax.axhline(float(np.mean(y)), ls=":", c="gray", lw=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall (sensitivity)", ylabel="precision (PPV)")
        ax.set_title(titles.get(name, name), fontsize=8)
    return fig


def _matrix(ax: Any, matrix: np.ndarray, ticks: Sequence[str], title: str) -> None:
    """Counts as a heat map with the count written in each cell; rows are the truth."""
    ax.imshow(matrix, cmap="Blues")
    dark = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count:d}", ha="center", va="center", fontsize=8,
                color="white" if count > dark else "black")
    ax.set_xticks(range(len(ticks)), ticks, fontsize=7, rotation=30 if len(ticks) > 2 else 0)
    ax.set_yticks(range(len(ticks)), ticks, fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true", fontsize=8)
    ax.set_title(title, fontsize=8)


def binary_confusions(confusions: Mapping[str, Sequence[Sequence[int]]]) -> Figure:
    """One 2x2 panel per class of a multilabel task (``[[tn, fp], [fn, tp]]`` at the class's threshold)."""
    fig, axes = _figure(len(confusions), panel=(2.2, 2.2))
    for ax, (name, matrix) in zip(axes, confusions.items()):
        _matrix(ax, np.asarray(matrix, int), ["neg", "pos"], name)
    return fig


def confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> Figure:
    """The K x K confusion matrix of a single-label task (rows: true class, columns: predicted)."""
    side = 1.2 + 0.55 * len(classes)
    fig, (ax,) = _figure(1, panel=(side + 0.6, side), fit_labels=True)
    _matrix(ax, np.asarray(matrix, int), list(classes), "confusion matrix")
    return fig


def training_curves(history: pd.DataFrame, classes: Sequence[str], monitor: str,
                    timing: Mapping[str, Any] | None = None) -> Figure:
    """Loss and validation loss with the learning rate on a second axis, the monitored metric, per-class
    validation AUC and (given ``timing.json``) seconds per epoch, against the 1-based epoch.

    Args:
        history: ``history.csv`` of fit (Keras CSVLogger: ``epoch`` 0-based, ``loss``, ``learning_rate``
            (``lr`` in older runs),
            ``val_loss``, ``val_auc_<Class>`` with spaces as underscores, ``val_mean_auc`` or
            ``val_accuracy``). monitor: the column that chose the best epoch (marked by a dashed line).
    """
    epochs = history["epoch"].to_numpy() + 1
    class_columns = {c: f"val_auc_{c.replace(' ', '_')}" for c in classes}
    class_columns = {c: col for c, col in class_columns.items() if col in history}
    panels = 2 + bool(class_columns) + (timing is not None)
    fig, axes = _figure(panels)
    best = epochs[int(np.nanargmax(history[monitor].to_numpy()))] if monitor in history else None

    ax = axes[0]
    for column in ("loss", "val_loss"):
        if column in history:
            ax.plot(epochs, history[column], marker=".", label=column)
    ax.set(xlabel="epoch", ylabel="loss", title="loss and learning rate")
    handles, top = ax.get_lines(), ax
    rate = next((column for column in ("learning_rate", "lr") if column in history), None)
    if rate is not None:
        top = ax.twinx()
        handles += top.plot(epochs, history[rate], c="gray", ls="--", lw=1, label="learning rate (right axis)")
        top.tick_params(labelsize=7)
    top.legend(handles=handles, fontsize=7)  # on the axis drawn last, so no curve crosses it

    ax = axes[1]
    train_column = monitor.removeprefix("val_")
    for column in (train_column, monitor):
        if column in history:
            ax.plot(epochs, history[column], marker=".", label=column)
    ax.set(xlabel="epoch", title=monitor)
    ax.legend(fontsize=7)
    marked = [ax]

    if class_columns:
        ax = axes[2]
        for name, column in class_columns.items():
            ax.plot(epochs, history[column], marker=".", label=name)
        ax.set(xlabel="epoch", ylabel="AUC", title="validation AUC per class")
        ax.legend(fontsize=6, ncol=2)
        marked.append(ax)
    if timing is not None:
        ax = axes[-1]
        rows = timing.get("epochs", [])
        ax.bar([e["epoch"] for e in rows], [e["seconds"] for e in rows], color="tab:gray")
        ax.set(xlabel="epoch", ylabel="seconds", title="time per epoch")
    for ax in marked:
        if best is not None:
            ax.axvline(best, c="k", ls=":", lw=0.8)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
    return fig


def noise_sweep(entries: Sequence[Mapping[str, Any]], metric: str = "mean_auc", label: str = "mean AUC") -> Figure:
    """``metric`` against the noise level (CI as error bars when given), one panel per noise model, whose
    levels have their own units (Poisson: dose scale, Gaussian: sigma in grey levels).

    Args:
        entries: ``metrics.json["noise_sweep"]``: dicts with ``noise``, ``level``, ``metric`` and
            optionally ``<metric>_ci``. label: the metric's name on the y axis.
    """
    noises = list(dict.fromkeys(e["noise"] for e in entries))
    fig, axes = _figure(len(noises))
    for ax, noise in zip(axes, noises):
        rows = sorted((e for e in entries if e["noise"] == noise), key=lambda e: e["level"])
        levels = np.array([e["level"] for e in rows], float)
        values = np.array([np.nan if e.get(metric) is None else e[metric] for e in rows], float)
        ci = np.array([e.get(f"{metric}_ci") or (v, v) for e, v in zip(rows, values)], float)
        ax.errorbar(levels, values, yerr=[values - ci[:, 0], ci[:, 1] - values], marker="o", capsize=3)
        ax.set(xlabel=f"{noise} level", ylabel=label, title=noise)
    return fig
