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

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cxr_tf import cli, cli_options, config
from cxr_tf.errors import UserError


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
    from cxr_tf.evaluation import explanations
    from cxr_tf.training import runs

    run = runs.load(cfg.run)
    out = cfg.out or run.path / "explain"
    model = run.load_model()
    explanations.check_request(run, model, cfg.classes, cfg.layer)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.images:
        done = explanations.explain_images(run, model, cfg.images, out, cfg.classes, cfg.layer)
        for path, reason in done.skipped:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        for overlay in done.overlays:
            print(f"{overlay.file}  {overlay.class_name} p={overlay.probability:.3f}")
        print(f"{len(done.overlays)} overlay(s) in {out}; {len(done.skipped)} unreadable file(s) skipped")
    if cfg.records is not None:
        boxed = explanations.explain_records(run, model, cfg.records, cfg.split, out, limit=cfg.limit,
                                             layer=cfg.layer)
        for overlay in boxed.overlays:
            print(f"{overlay.file}  {'hit' if overlay.hit else 'miss'}")
        print_hit_rate(boxed.hit_rate, cfg.records, cfg.split)
        if not boxed.hit_rate["overall"]["boxes"]:
            print(f"no record of split {cfg.split} has a box of {', '.join(run.classes)}")
        print(f"{boxed.file}; {len(boxed.overlays)} overlay(s) with boxes in {out}")
    return 0


def print_hit_rate(table: dict[str, dict], records: str, split: str) -> None:
    """The hit-rate table: per class and overall, hits, boxed pairs, rate and chance rate."""
    width = max(len(name) for name in table)
    print(f"Grad-CAM peak inside a box, {records} split {split}:")
    print(f"{'class':<{width}}  {'hits':>5}  {'boxed':>5}  {'rate':>5}  {'chance':>6}")
    for name, row in table.items():
        rate = "-" if row["rate"] is None else f"{row['rate']:.3f}"
        chance = "-" if row["chance"] is None else f"{row['chance']:.3f}"
        print(f"{name:<{width}}  {row['hits']:>5}  {row['boxes']:>5}  {rate:>5}  {chance:>6}")


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
