"""``python -m cxr_tf.explain``: Grad-CAM overlays of a run's model, and its box hit rate on records.

Examples:
    python -m cxr_tf.explain --run runs/demo chest1.png chest2.jpg --out runs/demo/explain
    python -m cxr_tf.explain --run runs/demo chest1.png --class Cardiomegaly Effusion
    python -m cxr_tf.explain --run runs/demo --records records/phantoms --split test

Each image gives ``<image stem>_<class>.png``: by default for every class whose probability reaches
its threshold (``thresholds.json``, written by evaluate) or, without thresholds or when none does,
for the top-scoring class. ``--class`` (short for ``--classes``) names the classes instead; it takes
every word up to the next flag, so list the images before it. Files that cannot be read are reported
one line each and skipped.

With ``--records``, the boxed records of ``--split`` are explained instead: ``hit_rate.json`` holds
per class the boxed (image, class) pairs, how many have their heatmap peak inside a box of that class,
the rate and the rate a random peak would reach; the first overlays are written with the boxes drawn.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cxr_tf import cli, cli_options, config
from cxr_tf.errors import UserError

# Overlays written in --records mode: enough to eyeball, few enough for NIH's 880 boxed images.
RECORD_OVERLAYS = 8


@dataclass
class ExplainConfig:
    run: Path = config.required("run directory of python -m cxr_tf.fit")
    images: list[str] = config.option([], "image files (PNG, JPEG, DICOM...); also given without a flag")
    classes: list[str] | None = config.option(None, "classes to explain (default: above threshold, or the top one)")
    out: Path | None = config.option(None, "directory of the overlays (default: RUN/explain)")
    records: str | None = config.option(None, "records directory with boxes: report the Grad-CAM hit rate")
    split: str = config.option("test", "split of --records")
    limit: int | None = config.option(None, "use only the first N boxed records", at_least=1)
    layer: str | None = config.option(None, "feature map to weigh (default: the backbone's last one)")


def parse_args(argv: Sequence[str]) -> ExplainConfig:
    prog = "python -m cxr_tf.explain"
    return cli_options.parse_with_positionals(ExplainConfig, argv, prog, "Grad-CAM heatmaps of a run's model over "
                                              "images.", field="images", metavar="IMAGE")


def main(argv: Sequence[str]) -> int:
    cfg = parse_args(argv)
    if not cfg.images and cfg.records is None:
        raise UserError("python -m cxr_tf.explain: give IMAGE files or --records DIR (see --help)")
    from cxr_tf.training import runs

    run = runs.load(cfg.run)
    unknown = [name for name in cfg.classes or [] if name not in run.classes]
    if unknown:
        raise UserError(f"--class {', '.join(unknown)}: not a class of {run.path}; "
                        f"its classes: {', '.join(run.classes)}")
    out = cfg.out or run.path / "explain"
    out.mkdir(parents=True, exist_ok=True)
    model = run.load_model()
    from cxr_tf.evaluation import explain

    try:
        explain.feature_layer(model, cfg.layer)
    except ValueError as err:
        raise UserError(f"--layer: {err}") from None
    if cfg.images:
        explain_images(model, run, cfg, out)
    if cfg.records is not None:
        explain_records(model, run, cfg, out)
    return 0


def explain_images(model: Any, run: Any, cfg: ExplainConfig, out: Path) -> None:
    import numpy as np

    from cxr_tf.io import imaging
    from cxr_tf.training import runs
    from cxr_tf.evaluation import explain
    size, resize = run.config.image_size, run.info.resize
    thresholds = run.thresholds()
    written: set[Path] = set()
    panels: dict[str, np.ndarray] = {}
    skipped = 0
    for path in map(Path, cfg.images):
        gray, reason = imaging.load_gray8_or_reason(path)
        if reason is not None:
            print(f"skipped {path}: {reason}", file=sys.stderr)
            skipped += 1
            continue
        image = run.input_spec.from_gray(gray)[np.newaxis]
        probs = np.asarray(runs.probabilities(model(image, training=False), run.head))[0]
        transform = imaging.resize(gray, size, resize)[1]
        for name in cfg.classes or default_classes(run.classes, probs, thresholds):
            heatmap = explain.grad_cam(model, image, run.classes.index(name), run.head, cfg.layer)[0]
            target = unused(out / f"{explain.file_stem(path.stem)}_{explain.file_stem(name)}.png", written)
            panel = explain.overlay(gray, heatmap, transform)
            explain.save_png(target, panel)
            panels[target.stem] = panel
            print(f"{target}  {name} p={probs[run.classes.index(name)]:.3f}")
            written.add(target)
    explain.write_tensorboard(run.path, panels)
    print(f"{len(written)} overlay(s) in {out}; {skipped} unreadable file(s) skipped")


def unused(target: Path, written: set[Path]) -> Path:
    """``target``, or ``<stem>_2.png``... when an earlier input of the same stem (a.png, a.jpg) took it."""
    candidate, n = target, 1
    while candidate in written:
        n += 1
        candidate = target.with_name(f"{target.stem}_{n}{target.suffix}")
    return candidate


def default_classes(classes: list[str], probs: Any, thresholds: dict[str, float] | None) -> list[str]:
    """Classes at or above their threshold; without thresholds, or when none is, the top-scoring one."""
    above = [c for c, p in zip(classes, probs) if thresholds is not None and p >= thresholds[c]]
    return above or [classes[int(probs.argmax())]]


def explain_records(model: Any, run: Any, cfg: ExplainConfig, out: Path) -> None:
    from cxr_tf.evaluation import explain

    counts, kept = explain.hit_rate(model, run, cfg.records, cfg.split, limit=cfg.limit, keep=RECORD_OVERLAYS,
                                    layer=cfg.layer)
    table = counts.to_json()
    (out / "hit_rate.json").write_text(json.dumps(table, indent=2))
    panels = {}
    for pair in kept:
        target = out / f"{explain.file_stem(Path(pair.path).stem)}_{explain.file_stem(pair.class_name)}.png"
        panels[target.stem] = pair.render()
        explain.save_png(target, panels[target.stem])
        print(f"{target}  {'hit' if pair.hit else 'miss'}")
    explain.write_tensorboard(run.path, panels)
    width = max(len(name) for name in table)
    print(f"Grad-CAM peak inside a box, {cfg.records} split {cfg.split}:")
    print(f"{'class':<{width}}  {'hits':>5}  {'boxed':>5}  {'rate':>5}  {'chance':>6}")
    for name, row in table.items():
        rate = "-" if row["rate"] is None else f"{row['rate']:.3f}"
        chance = "-" if row["chance"] is None else f"{row['chance']:.3f}"
        print(f"{name:<{width}}  {row['hits']:>5}  {row['boxes']:>5}  {rate:>5}  {chance:>6}")
    if not table["overall"]["boxes"]:
        print(f"no record of split {cfg.split} has a box of {', '.join(run.classes)}")
    print(f"{out / 'hit_rate.json'}; {len(kept)} overlay(s) with boxes in {out}")


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
