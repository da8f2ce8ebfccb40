"""The reviewer's sections of a run's report: data, calibration, operating points, subgroups, Grad-CAM,
errors and provenance (CLAIM and TRIPOD-AI items), each built from what evaluate, explain and fit wrote.

Every function returns blocks of ``cxr_tf.evaluation.document``; a section whose inputs are missing
says which command produces them instead of disappearing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cxr_tf.evaluation import columns
from cxr_tf.evaluation.document import Block, Gallery, Image, Table
from cxr_tf.evaluation.formatting import fmt, with_ci

if TYPE_CHECKING:
    from cxr_tf.evaluation.report import EvaluatedRun
    from cxr_tf.records.info import RecordsInfo

# The synth command leaves its config beside the phantoms; build_records' dataset.json names that folder.
PHANTOM_MARKER = "synth.toml"


def read_json(path: Path) -> Any:
    """The parsed JSON file ``path``, or None when it does not exist."""
    return json.loads(path.read_text()) if path.exists() else None


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


def phantom_source(info: RecordsInfo) -> Path | None:
    """The phantom folder the records were built from (it holds ``synth.toml``), or None for real data."""
    images = info.build_args.get("images")
    return Path(images) if images and (Path(images) / PHANTOM_MARKER).is_file() else None


def data_blocks(info: RecordsInfo, classes: Sequence[str]) -> list[Block]:
    """The records the run was trained and tested on (``dataset.json``): per split images, patients and
    prevalence per class, then the uncertain and blank labels per split when there are any."""
    splits = info.splits
    rows = []
    for split, s in splits.items():
        prevalence = []
        for c in classes:
            counts = s.counts.get(c, {})
            prevalence.append(f"{counts.get('positive', 0)} ({counts.get('positive', 0) / max(s.examples, 1):.1%})")
        rows.append([split, str(s.examples), str(s.patients), *prevalence])
    blocks: list[Block] = [
        f"{info.dataset} records ({info.task}), stored at {info.image_size} px ({info.resize}); "
        f"{info.skipped.total} source rows skipped when they were built.",
        Table(["split", "images", "patients", *(f"{c}: positives (prevalence)" for c in classes)], rows)]
    if any(s.counts.get(c, {}).get(state, 0) for s in splits.values() for c in classes
           for state in ("uncertain", "blank")):
        blocks.append(Table(["split", *(f"{c}: uncertain / blank" for c in classes)],
                            [[split, *(f"{s.counts.get(c, {}).get('uncertain', 0)} / "
                                       f"{s.counts.get(c, {}).get('blank', 0)}" for c in classes)]
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


def image(root: Path, relative: str, caption: str) -> Image:
    return Image(relative, caption, (root / relative).read_bytes())


def grad_cam_blocks(ev: EvaluatedRun) -> list[Block]:
    """explain's box hit rates next to chance (``explain/hit_rate.json``) and its overlays, captioned with
    the class's probability from ``predictions.csv``."""
    from cxr_tf.evaluation.explain import file_stem

    folder = ev.run.path / "explain"
    rates = read_json(folder / "hit_rate.json")
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
                caption = f"{png.stem}: p({c}) = {ev.predictions[columns.probability(c)].iloc[row]:.3f}"
        images.append(image(ev.run.path, f"explain/{png.name}", caption))
    return blocks + ([Gallery(images)] if images else [])


def error_blocks(ev: EvaluatedRun) -> list[Block]:
    """The gallery of the most confident false positives and negatives (``errors.json``), per class."""
    from cxr_tf.evaluation.errors import INDEX_FILE, KINDS

    relative = Path("eval") / ev.split
    entries = read_json(ev.run.path / relative / INDEX_FILE)
    if entries is None:
        return ["No error gallery: evaluate ran with --gallery 0."]
    if not entries:
        return ["No errors at the operating thresholds."]
    blocks: list[Block] = ["Grad-CAM of the class on the most confident errors at the operating threshold "
                           "(false positives: highest probability among negatives; false negatives: lowest among "
                           "positives)."]
    for name in ev.run.classes:
        images = [image(ev.run.path, str(relative / e["file"]),
                         f"{KINDS[e['kind']]} {e['rank']}: {Path(e['path']).name}, p = {e['probability']:.3f}")
                  for e in entries if e["class"] == name and "file" in e]
        if images:
            blocks += [f"{name}:", Gallery(images)]
    return blocks


def provenance_blocks(ev: EvaluatedRun) -> list[Block]:
    """Versions, commit, device, date and command of the training run and of the evaluation."""
    from cxr_tf.evaluation import provenance

    made = {"fit": provenance.load(ev.run.path), "evaluate": ev.metrics.get("provenance")}
    fields = ("command", "cxr_tf", "tensorflow", "keras", "python", "git_commit", "device", "date")
    rows = [[f, *("n/a" if p is None or p.get(f) is None else str(p[f]) for p in made.values())] for f in fields]
    return [Table(["", *made], rows, numeric=False)]
