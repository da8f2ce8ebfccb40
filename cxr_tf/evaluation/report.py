"""The report of an evaluated run: ``runs/X/report.md`` and a self-contained ``runs/X/report.html``.

Reads what ``python -m cxr_tf.fit`` wrote (``config.toml``, ``dataset.json``, ``params.json``,
``history.csv``, ``timing.json``, ``provenance.json``), what ``python -m cxr_tf.evaluate`` wrote
(``eval/<split>/metrics.json``, ``predictions.csv``, ``errors.json`` and its overlays) and, when
``python -m cxr_tf.explain --records`` ran, ``explain/hit_rate.json`` and its overlays; nothing is
recomputed except the curves. Sections: run, data, metrics, curves, calibration, operating points,
subgroups, Grad-CAM, errors, training, noise, provenance; a run on synthetic phantoms opens with a
banner saying so. The Markdown links its figures (``report_files/`` and the overlays where evaluate and
explain wrote them); the HTML inlines them as base64 data URIs and carries its CSS, so it can be mailed
or attached as one file.
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cxr_tf import reporting, runs
from cxr_tf.errors import UserError
from cxr_tf.evaluation import plots
from cxr_tf.evaluation.formatting import fmt, with_ci

log = reporting.logger("report")

REPORT_FILES = "report_files"
CSS = """body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child,.text td{text-align:left}img{max-width:100%}figcaption{font-size:.85em;color:#555}
.gallery{display:flex;flex-wrap:wrap;gap:.5em}.gallery figure{width:15em;margin:0}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em;font-weight:bold}"""
# The synth command leaves its config beside the phantoms; build_records' dataset.json names that folder.
PHANTOM_MARKER = "synth.toml"


@dataclass(frozen=True)
class Evaluation:
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


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def load_evaluation(run_dir: str | Path, split: str = "test") -> Evaluation:
    """Read a run directory and its ``eval/<split>/``; a split not yet evaluated is a ``UserError``."""
    run = runs.load(run_dir)
    eval_dir = run.path / "eval" / split
    for name in ("metrics.json", "predictions.csv"):
        if not (eval_dir / name).exists():
            raise UserError(f"{run.path}: no eval/{split}/{name}; run python -m cxr_tf.evaluate --run {run.path} "
                            f"--split {split} first")
    predictions = pd.read_csv(eval_dir / "predictions.csv")
    missing = [f"{kind}_{c}" for c in run.classes for kind in ("label", "prob") if f"{kind}_{c}" not in predictions]
    if missing:
        raise UserError(f"{eval_dir / 'predictions.csv'}: no column(s) {', '.join(missing)}; re-run "
                        f"python -m cxr_tf.evaluate --run {run.path} --split {split}")
    history = pd.read_csv(run.path / "history.csv") if (run.path / "history.csv").exists() else None
    return Evaluation(run, split, _json(eval_dir / "metrics.json"), predictions, history,
                      _json(run.path / "timing.json"), _json(run.path / "params.json"))


# ---------------------------------------------------------------------------------------------------------
# Formatting and the two renderings (Markdown, HTML) of one document.


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells; ``numeric`` right-aligns every column but the first."""

    header: list[str]
    rows: list[list[str]]
    numeric: bool = True

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

        align = "---:" if self.numeric else "---"
        return "\n".join([line(self.header), line(["---"] + [align] * (len(self.header) - 1)),
                          *map(line, self.rows)])

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                       for row in self.rows)
        opening = "<table>" if self.numeric else '<table class="text">'
        return f"{opening}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True)
class Image:
    """A figure: its file under ``report_files/``, a caption and the PNG bytes (inlined in HTML)."""

    file: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Gallery:
    """Small images side by side (overlays), each with its caption."""

    images: list[Image]


Block = Table | Image | Gallery | str  # a str is a paragraph
Section = tuple[str, list[Block]]


def _figure_html(image: Image) -> str:
    data = base64.b64encode(image.png).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{html.escape(image.caption)}\">"
            f"<figcaption>{html.escape(image.caption)}</figcaption></figure>")


def to_markdown(title: str, sections: Sequence[Section], banner: str | None = None) -> str:
    parts = [f"# {title}"] + ([f"> **{banner}**"] if banner else [])
    for heading, blocks in sections:
        parts.append(f"## {heading}")
        for block in blocks:
            if isinstance(block, Table):
                parts.append(block.markdown())
            elif isinstance(block, Image):
                parts.append(f"![{block.caption}]({block.file})")
            elif isinstance(block, Gallery):
                parts.append("\n".join(f"![{image.caption}]({image.file}) {image.caption}  "
                                       for image in block.images))
            else:
                parts.append(block)
    return "\n\n".join(parts) + "\n"


def to_html(title: str, sections: Sequence[Section], banner: str | None = None) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if banner:
        parts.append(f"<p class=\"banner\">{html.escape(banner)}</p>")
    for heading, blocks in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if isinstance(block, Table):
                parts.append(block.html())
            elif isinstance(block, Image):
                parts.append(_figure_html(block))
            elif isinstance(block, Gallery):
                parts.append("<div class=\"gallery\">" + "".join(map(_figure_html, block.images)) + "</div>")
            else:
                parts.append(f"<p>{html.escape(block)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Sections.


def _schedule(cfg: Any) -> str:
    if cfg.schedule == "cyclic":
        return (f"cyclic {cfg.clr_mode} ({min(cfg.base_lr, cfg.lr):g} to {cfg.lr:g}, half-cycle "
                f"{cfg.step_size_epochs:g} epochs)")
    if cfg.schedule == "cosine":
        return f"cosine from {cfg.lr:g} (warm-up {cfg.warmup_epochs:g} epochs)"
    return cfg.schedule


def summary(ev: Evaluation) -> Table:
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
        ["task", f"{m['task']} (head {ev.run.head})"],
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


def figures(ev: Evaluation, out_dir: Path) -> dict[str, Image]:
    """ROC (with patient-bootstrap bands), PR, confusion, training and noise-sweep figures, saved in ``out_dir``.

    Returns:
        name (``roc``, ``pr``, ``reliability``, ``confusion``, ``training``, ``noise_sweep``) -> image, for
        the figures the run has data for.
    """
    m, pred = ev.metrics, ev.predictions
    boot = m["bootstrap"]
    labels, scores, patients = {}, {}, {}
    for name in ev.run.classes:
        keep = pred[f"label_{name}"].notna().to_numpy()  # masked labels (U-Ignore) are left out, as in metrics
        labels[name] = pred.loc[keep, f"label_{name}"].to_numpy().astype(int)
        scores[name] = pred.loc[keep, f"prob_{name}"].to_numpy(np.float64)
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


def roc_points(metrics: dict[str, Any]) -> dict[str, list[tuple[float, float, str]]]:
    """Per class, the operating points to mark on its ROC: (1 - specificity, sensitivity, label) of the
    run's threshold and of every fixed-specificity/sensitivity point, as scored on the evaluated split."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    for name, c in metrics["classes"].items():
        points = []
        if c.get("specificity") is not None and c.get("sensitivity") is not None:
            points.append((1.0 - c["specificity"], c["sensitivity"], f"threshold ({metrics['threshold']['method']})"))
        for p in ((metrics.get("operating_points") or {}).get("classes") or {}).get(name) or []:
            if p["specificity"] is not None and p["sensitivity"] is not None:
                points.append((1.0 - p["specificity"], p["sensitivity"], f"{p['at']} >= {p['target']:g} on val"))
        out[name] = points
    return out


def phantom_source(info: dict[str, Any]) -> Path | None:
    """The phantom folder the records were built from (it holds ``synth.toml``), or None for real data."""
    images = (info.get("build_args") or {}).get("images")
    return Path(images) if images and (Path(images) / PHANTOM_MARKER).is_file() else None


def data_blocks(info: dict[str, Any], classes: Sequence[str]) -> list[Block]:
    """The records the run was trained and tested on (``dataset.json``): per split images, patients and
    prevalence per class, then the uncertain and blank labels per split when there are any."""
    splits = info["splits"]
    rows = []
    for split, s in splits.items():
        prevalence = []
        for c in classes:
            counts = s["counts"].get(c, {})
            prevalence.append(f"{counts.get('positive', 0)} ({counts.get('positive', 0) / max(s['examples'], 1):.1%})")
        rows.append([split, str(s["examples"]), str(s["patients"]), *prevalence])
    blocks: list[Block] = [
        f"{info['dataset']} records ({info['task']}), stored at {info['image_size']} px ({info['resize']}); "
        f"{info.get('skipped', {}).get('total', 0)} source rows skipped when they were built.",
        Table(["split", "images", "patients", *(f"{c}: positives (prevalence)" for c in classes)], rows)]
    if any(s["counts"].get(c, {}).get(state, 0) for s in splits.values() for c in classes
           for state in ("uncertain", "blank")):
        blocks.append(Table(["split", *(f"{c}: uncertain / blank" for c in classes)],
                            [[split, *(f"{s['counts'].get(c, {}).get('uncertain', 0)} / "
                                       f"{s['counts'].get(c, {}).get('blank', 0)}" for c in classes)]
                             for split, s in splits.items()]))
    return blocks


def calibration_blocks(metrics: dict[str, Any], image: Image | None) -> list[Block]:
    """Brier score and ECE per class (before and after scaling when it was fitted), and the diagram."""
    cal = metrics.get("calibration")
    if not cal:
        return ["Not measured: re-run python -m cxr_tf.evaluate."]
    scaled = cal["method"] is not None
    header = ["class", "Brier", f"ECE ({cal['bins']} bins)"]
    header += ["Brier before", "ECE before", "slope", "intercept"] if scaled else []
    rows = []
    for name, c in cal["classes"].items():
        row = [name, fmt(c["brier"]), fmt(c["ece"])]
        if scaled:
            params = cal["parameters"][name]
            row += [fmt(c["uncalibrated"]["brier"]), fmt(c["uncalibrated"]["ece"]), fmt(params["slope"]),
                    fmt(params["intercept"])]
        rows.append(row)
    note = (f"Probabilities {cal['method']}-scaled, fitted on the {cal['fitted_on']} split; the export applies the "
            "same scaling." if scaled else
            "Probabilities as the model gives them (evaluate --calibrate to scale them).")
    return [note, Table(header, rows)] + ([image] if image else [])


def operating_point_blocks(metrics: dict[str, Any]) -> list[Block]:
    """One row per class and target: the threshold chosen on val and every rate on the test split [CI]."""
    ops = metrics.get("operating_points") or {}
    rows = []
    for name, points in (ops.get("classes") or {}).items():
        for p in points or []:
            rows.append([name, f"{p['at']} {p['target']:g}", fmt(p["threshold"]),
                         *(with_ci(p[k], p[f"{k}_ci"]) for k in ("sensitivity", "specificity", "ppv", "npv", "f1"))])
    if not rows:
        return ["No operating points: the records have no val split to choose thresholds on, or no class has "
                "positives and negatives in both splits."]
    dropped = max((p["dropped"] for points in ops["classes"].values() for p in points or []), default=0)
    boot = metrics["bootstrap"]
    return [f"Thresholds chosen on the {ops['split']} split, applied to the {metrics['split']} split; 95 % CIs from "
            f"{boot['resamples']} patient resamples ({dropped} dropped for lacking positives or negatives).",
            Table(["class", "target", "threshold", "sensitivity", "specificity", "PPV", "NPV", "F1"], rows)]


def subgroup_blocks(metrics: dict[str, Any]) -> list[Block]:
    """Per attribute a table: subgroup, images, patients, then per class AUC [CI] (positives) or a note."""
    sub = metrics.get("subgroups") or {}
    if not sub.get("attributes"):
        return ["The source records no view, projection, sex or age for these images."]
    classes = list(metrics["classes"])
    blocks: list[Block] = [f"AUC [95 % CI] (positives) per subgroup; cells with fewer than {sub['min_positives']} "
                           "positives or negatives are not scored."]
    for attribute, table in sub["attributes"].items():
        rows = []
        for value, g in table.items():
            cells = []
            for c in classes:
                cell = g["classes"][c]
                cells.append(cell["note"] + f" ({cell['positives']})" if cell["auc"] is None
                             else f"{with_ci(cell['auc'], cell['auc_ci'])} ({cell['positives']})")
            rows.append([value, str(g["n"]), str(g["patients"]), *cells])
        blocks += [f"By {attribute}:", Table([attribute, "images", "patients", *classes], rows)]
    return blocks


def _image(root: Path, relative: str, caption: str) -> Image:
    return Image(relative, caption, (root / relative).read_bytes())


def grad_cam_blocks(ev: Evaluation) -> list[Block]:
    """explain's box hit rates next to chance (``explain/hit_rate.json``) and its overlays, captioned with
    the class's probability from ``predictions.csv``."""
    from cxr_tf.evaluation.explain import file_stem

    folder = ev.run.path / "explain"
    rates = _json(folder / "hit_rate.json")
    if rates is None:
        return [f"Not run: python -m cxr_tf.explain --run {ev.run.path} --records RECORDS --split {ev.split} "
                "measures whether the Grad-CAM peak falls inside the boxes."]
    blocks: list[Block] = [
        "Pointing game: the share of boxed (image, class) pairs whose Grad-CAM peak lies inside a box of that class, "
        "next to the share a randomly placed peak would reach (the boxes' area).",
        Table(["class", "boxed pairs", "hits", "hit rate", "chance"],
              [[name, str(r["boxes"]), str(r["hits"]), fmt(r["rate"]), fmt(r["chance"])] for name, r in rates.items()])]
    # explain names an overlay <image stem>_<class>.png.
    rows = dict(zip(ev.predictions["path"].map(lambda p: Path(p).stem), range(len(ev.predictions))))
    images = []
    for png in sorted(folder.glob("*.png")):
        caption = png.stem
        for c in ev.run.classes:
            suffix = f"_{file_stem(c)}"
            row = rows.get(png.stem[:-len(suffix)]) if png.stem.endswith(suffix) else None
            if row is not None:
                caption = f"{png.stem}: p({c}) = {ev.predictions[f'prob_{c}'].iloc[row]:.3f}"
        images.append(_image(ev.run.path, f"explain/{png.name}", caption))
    return blocks + ([Gallery(images)] if images else [])


def error_blocks(ev: Evaluation) -> list[Block]:
    """The gallery of the most confident false positives and negatives (``errors.json``), per class."""
    from cxr_tf.evaluation.errors import INDEX_FILE, KINDS

    relative = Path("eval") / ev.split
    entries = _json(ev.run.path / relative / INDEX_FILE)
    if entries is None:
        return ["No error gallery: evaluate ran with --gallery 0."]
    if not entries:
        return ["No errors at the operating thresholds."]
    blocks: list[Block] = ["Grad-CAM of the class on the most confident errors at the operating threshold "
                           "(false positives: highest probability among negatives; false negatives: lowest among "
                           "positives)."]
    for name in ev.run.classes:
        images = [_image(ev.run.path, str(relative / e["file"]),
                         f"{KINDS[e['kind']]} {e['rank']}: {Path(e['path']).name}, p = {e['probability']:.3f}")
                  for e in entries if e["class"] == name and "file" in e]
        if images:
            blocks += [f"{name}:", Gallery(images)]
    return blocks


def provenance_blocks(ev: Evaluation) -> list[Block]:
    """Versions, commit, device, date and command of the training run and of the evaluation."""
    from cxr_tf.evaluation import provenance

    made = {"fit": provenance.load(ev.run.path), "evaluate": ev.metrics.get("provenance")}
    fields = ("command", "cxr_tf", "tensorflow", "keras", "python", "git_commit", "device", "date")
    rows = [[f, *("n/a" if p is None or p.get(f) is None else str(p[f]) for p in made.values())] for f in fields]
    return [Table(["", *made], rows, numeric=False)]


def write_report(run_dir: str | Path, split: str = "test") -> tuple[Path, Path]:
    """Write ``report.md`` (figures in ``report_files/``) and the self-contained ``report.html`` of a run.

    Args:
        run_dir: a finished fit run whose ``split`` was evaluated (``eval/<split>/metrics.json`` and
            ``predictions.csv``); otherwise a ``UserError`` says to run ``python -m cxr_tf.evaluate``.

    Returns:
        (path of report.md, path of report.html), both in ``run_dir``.
    """
    return write(load_evaluation(run_dir, split))


def write(ev: Evaluation) -> tuple[Path, Path]:
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
