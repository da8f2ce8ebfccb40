"""``python -m cxr_tf.study``: run one of the five studies' grids and write its tables beside its own figures.

Each arm is a fit run under ``--out`` (``pipelines/`` recipe + the arm's keys + ``--set``), evaluated on the
test split; ``study.md``, ``study.html`` and ``table.csv`` hold the study's tables in its own layout.
Re-running the same command trains nothing that finished and resumes a killed arm.

Examples:
    python -m cxr_tf.study s1 --records records/chexpert --out studies/s1
    python -m cxr_tf.study s3 --records records/covid --out studies/s3 --arms cnn5 resnet18_frozen1
    python -m cxr_tf.study s3 --phantoms --out studies/s3_phantoms        # no data needed: phantoms, reduced grid
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from cxr_tf import cli, cli_options, config
from cxr_tf.errors import UserError
from cxr_tf.registry import lazy

@dataclasses.dataclass(kw_only=True)
class StudyConfig:
    """Flags of study."""

    study: str = config.required("the study", choices=lazy("cxr_tf.studies.grids", "STUDIES"))
    out: Path = config.required("directory of the study's runs (one per arm) and tables")
    records: str = config.option("", "records of the study's data (build_records; see each recipe's header)")
    arms: list[str] = config.option([], "run (and tabulate) only these arms")
    set: list[str] = config.option([], "KEY=VALUE: override a recipe key in every arm (repeatable; VALUE is TOML)")
    deterministic: bool = config.option(False, "bit-identical weights from run to run on the CPU (fit "
                                               "--deterministic); the tables say which arms ran so")
    phantoms: bool = config.option(False, "draw phantom data in the study's layout and run a reduced grid "
                                          "(small images, few epochs, random initial weights)")
    phantom_n: int | None = config.option(None, "--phantoms: images to draw (default: the study's)")
    phantom_size: int | None = config.option(None, "--phantoms: image side, pixels (default: the study's)")
    resamples: int = config.option(1000, "patient-bootstrap resamples of evaluate's confidence intervals")
    seed: int = config.option(0, "seed of the phantoms and of the evaluation's bootstrap")


def parse(argv: Sequence[str]) -> StudyConfig:
    """``study`` is the first bare argument; everything else is a flag of ``StudyConfig``."""
    prog = "python -m cxr_tf.study"
    parser = cli_options.parser_for(StudyConfig, prog, "Run one of the five studies and write its tables.")
    parser.add_argument("bare", nargs="?", metavar="STUDY", help="same as --study")
    values = vars(parser.parse_intermixed_args(list(argv)))
    bare = values.pop("bare")
    if bare:
        values["study"] = bare
    return config.build(StudyConfig, values, prog)


def main(argv: Sequence[str]) -> int:
    cfg = parse(argv)
    if cfg.phantoms == bool(cfg.records):
        raise UserError("give --records DIR (the study's data) or --phantoms (phantom data), not both or neither")
    from cxr_tf import build_records, synth
    from cxr_tf.studies import phantoms, runner, tables
    from cxr_tf.studies.grids import STUDIES

    study = STUDIES.get(cfg.study)
    arms = runner.select_arms(study, cfg.arms)
    start = time.perf_counter()
    records = cfg.records
    if cfg.phantoms:
        records = str(phantoms.records_dir(cfg.out))
        if not phantoms.ready(cfg.out):
            steps = {"synth": synth.main, "build_records": build_records.main}
            for module, step_argv in phantoms.commands(study, cfg.out, n=cfg.phantom_n, size=cfg.phantom_size,
                                                       seed=cfg.seed):
                print(f"$ python -m cxr_tf.{module} {shlex.join(step_argv)}", flush=True)
                code = steps[module](step_argv)
                if code:
                    return code
    overrides = config.parse_overrides(cfg.set)
    for k, arm in enumerate(arms, 1):
        fit_cfg = runner.arm_config(arm, records=records, out=cfg.out,
                                    phantoms=study.phantoms if cfg.phantoms else None,
                                    overrides=overrides, deterministic=cfg.deterministic)
        print(f"[{k}/{len(arms)}] {arm.name}: {arm.recipe} ({fit_cfg.model}, {fit_cfg.epochs} epochs)", flush=True)
        result = runner.run_arm(arm, fit_cfg, study, resamples=cfg.resamples, seed=cfg.seed)
        print(f"[{k}/{len(arms)}] {arm.name}: " + ("trained" if result.trained else "finished earlier")
              + (", evaluated" if result.evaluated else ", evaluated earlier"), flush=True)
    paths = tables.write(study, cfg.out, arms, phantoms=cfg.phantoms)
    print("\n" + paths[0].read_text())
    print("wrote " + ", ".join(map(str, paths)))
    print(f"{study.name}: {len(arms)} arm(s) in {time.perf_counter() - start:.0f} s")
    return 0


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
