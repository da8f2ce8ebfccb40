"""``python -m cxr_tf.synth``: synthetic chest X-ray phantoms with known findings, in a real
dataset's layout (the embedded default data set: no download, no registration).

Examples:
    python -m cxr_tf.synth --out data/phantoms --n 2000 --size 256 --seed 0
    python -m cxr_tf.synth --out data/chexpert_like --style chexpert --uncertain 0.15 --blank 0.6
    python -m cxr_tf.synth --out data/folders --style folders --prevalence Pneumonia=0.4 --difficulty 0.7
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from cxr_tf import cli, cli_options, config
from cxr_tf.io import imaging
from cxr_tf.io.workers import worker_count
from cxr_tf.registry import lazy

MIN_SIZE = 32  # below this the ribs and lesions are sub-pixel


@dataclasses.dataclass(kw_only=True)
class SynthConfig:
    """Flags of synth."""

    out: Path = config.required("output directory")
    n: int = config.option(2000, "number of images", at_least=1)
    size: int = config.option(256, "image side, pixels", at_least=MIN_SIZE, at_most=imaging.MAX_SIDE)
    seed: int = config.option(0, "random seed; the same seed and flags give byte-identical files",
                              at_least=0, at_most=config.SEED_MAX)
    style: str = config.option("nih", "layout and label files: nih (ChestX-ray14), chexpert (CheXpert-v1.0-small, "
                                      "frontal only), folders (one class per image), kermany (chest_xray/, "
                                      "normal/bacteria/virus) or covid_radiography (4 class folders)",
                               choices=lazy("cxr_tf.phantoms.writers", "STYLES"))
    difficulty: float = config.option(0.5, "0 obvious .. 1 subtle: scales lesion contrast and size",
                                      at_least=0, at_most=1)
    findings: list[str] = config.option([], "findings to draw (NIH names); default: all ten for nih/chexpert, "
                                            "Cardiomegaly Effusion Pneumothorax Pneumonia for folders")
    prevalence: list[str] = config.option([], "NAME=P per-image probability of a finding, e.g. Effusion=0.3 "
                                              "(repeatable; folders: class shares, Normal takes the rest)")
    label_noise: float = config.option(0.02, "probability that a report gets a finding wrong", at_least=0, at_most=1)
    uncertain: float = config.option(0.1, "chexpert: share of reported positives written as uncertain (-1.0)",
                                     at_least=0, at_most=1)
    blank: float = config.option(0.5, "chexpert: share of negatives left blank", at_least=0, at_most=1)
    valid_share: float = config.option(0.05, "chexpert: share of patients in valid.csv; kermany: in test/",
                                       at_least=0, at_most=1)
    workers: int = config.option(0, "drawing processes; 0 = one per CPU core (more are capped at that)",
                                at_least=0)


def main(argv: Sequence[str]) -> int:
    cfg = cli_options.parse(SynthConfig, argv, prog="python -m cxr_tf.synth",
                            description="Write synthetic chest X-ray phantoms in a real dataset's layout.")

    from cxr_tf.phantoms import dataset, generate, writers

    style = writers.STYLES.get(cfg.style)
    chances = dataset.resolve_prevalence(cfg.findings or style.findings, cfg.prevalence, style.single_label)
    specs = generate.plan(cfg.n, cfg.seed, chances, single_label=style.single_label, label_noise=cfg.label_noise,
                          holdout_share=cfg.valid_share if style.holdout else 0.0)
    dataset.claim(cfg.out, config.to_dict(cfg), config.to_toml(cfg), ignore=("workers",))
    workers = worker_count(cfg.workers)
    start = time.perf_counter()
    files = dataset.write_dataset(cfg.out, specs, cfg.style, cfg.size, cfg.difficulty, cfg.seed, workers,
                                  writers.LabelOptions(cfg.size, cfg.seed, cfg.uncertain, cfg.blank))
    seconds = time.perf_counter() - start

    counts = Counter(f for spec in specs for f in spec.findings)
    patients = len({spec.patient for spec in specs})
    print(f"wrote {len(specs)} images of {patients} patients to {cfg.out} in {seconds:.1f} s "
          f"({len(specs) / seconds:.0f} images/s, {workers} workers)")
    print("prevalence (drawn): " + ", ".join(f"{name} {counts[name] / len(specs):.1%}" for name in chances))
    for path in files:
        print(f"labels: {path}")
    return 0


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
