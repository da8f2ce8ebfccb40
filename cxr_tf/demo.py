"""``python -m cxr_tf.demo``: the whole pipeline on synthetic phantoms, one command, a few minutes on a CPU.

synth -> build_records -> fit (``pipelines/demo_phantoms.toml``: cnn5, ``--enhance``, weighted BCE,
triangular cyclical LR) -> evaluate (test split, bootstrap CIs) -> explain (Grad-CAM, box hit rate) ->
report. Each step is the command a user would type, printed before it runs, so the demo doubles as a
tour; re-running a killed demo with the same flags resumes where it stopped (every step resumes).

Examples:
    python -m cxr_tf.demo                       # runs/demo/{phantoms,records,run}
    python -m cxr_tf.demo --out /tmp/demo --n 600 --epochs 3
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Callable, Sequence

from cxr_tf import cli, cli_options, config, synth
from cxr_tf.io import imaging

RECIPE = "demo_phantoms"  # pipelines/demo_phantoms.toml, shipped in the package (cxr_tf.resources)
# Drawn at raised prevalence so that the test split holds enough positives of each class for a CI.
FINDINGS = {"Cardiomegaly": 0.25, "Effusion": 0.25, "Pneumothorax": 0.25, "Edema": 0.2, "Consolidation": 0.2}


@dataclasses.dataclass(kw_only=True)
class DemoConfig:
    """Flags of demo."""

    out: Path = config.option(Path("runs/demo"), "directory of the phantoms, records and run")
    n: int = config.option(1500, "number of phantom images", at_least=1)
    size: int = config.option(128, "side of the phantoms and records, pixels", at_least=synth.MIN_SIZE,
                              at_most=imaging.MAX_SIDE)
    difficulty: float = config.option(0.5, "phantom difficulty, 0 obvious .. 1 subtle", at_least=0, at_most=1)
    epochs: int | None = config.option(None, "override the recipe's epochs", at_least=1)
    image_size: int | None = config.option(None, "override the recipe's model input side, pixels",
                                          at_least=imaging.MIN_SIDE, at_most=imaging.MAX_SIDE)
    seed: int = config.option(0, "seed of the phantoms, split and training", at_least=0, at_most=config.SEED_MAX)


def steps(cfg: DemoConfig) -> list[tuple[str, Callable[[Sequence[str]], int], list[str]]]:
    """The commands of the demo, in order: (module, its main, its argv)."""
    from cxr_tf import build_records, evaluate, explain, fit, report

    phantoms, records, run = cfg.out / "phantoms", cfg.out / "records", cfg.out / "run"
    overrides = [f"records={records}", f"out={run}", f"seed={cfg.seed}"]
    overrides += [f"epochs={cfg.epochs}"] if cfg.epochs is not None else []
    overrides += [f"image_size={cfg.image_size}"] if cfg.image_size is not None else []
    return [
        ("synth", synth.main, ["--out", str(phantoms), "--n", str(cfg.n), "--size", str(cfg.size),
                               "--difficulty", str(cfg.difficulty), "--label-noise", "0", "--seed", str(cfg.seed),
                               "--findings", *FINDINGS,
                               "--prevalence", *(f"{name}={p}" for name, p in FINDINGS.items())]),
        ("build_records", build_records.main,
         ["--dataset", "nih", "--labels", str(phantoms / "Data_Entry_2017.csv"),
          "--bbox", str(phantoms / "BBox_List_2017.csv"), "--images", str(phantoms),
          "--image-size", str(cfg.size), "--seed", str(cfg.seed), "--out", str(records)]),
        ("fit", fit.main, ["--recipe", RECIPE, *(arg for o in overrides for arg in ("--set", o))]),
        ("evaluate", evaluate.main, ["--run", str(run), "--split", "test"]),
        ("explain", explain.main, ["--run", str(run), "--records", str(records), "--split", "test",
                                   "--out", str(run / "explain")]),
        ("report", report.main, [str(run)]),
    ]


def main(argv: Sequence[str]) -> int:
    cfg = cli_options.parse(DemoConfig, argv, prog="python -m cxr_tf.demo",
                            description="Synthetic phantoms -> records -> fit -> evaluate -> explain -> report.")
    for module, step_main, step_argv in steps(cfg):
        print(f"\n$ python -m cxr_tf.{module} {shlex.join(step_argv)}", flush=True)
        code = step_main(step_argv)
        if code:
            return code
    print(f"\nreport: {cfg.out / 'run' / 'report.html'}")
    return 0


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
