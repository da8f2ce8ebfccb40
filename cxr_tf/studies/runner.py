"""Run a study's grid: each arm a ``fit`` run under the study's output directory, then evaluated on test.

Resumable at every level: ``fit`` returns a finished run's summary without training and resumes a killed
one from its last epoch; the evaluation is written to a scratch directory and renamed into place whole,
so an arm whose ``eval/test/metrics.json`` exists was evaluated completely and is not evaluated again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from cxr_tf import config as config_lib
from cxr_tf.errors import UserError
from cxr_tf.io import atomic
from cxr_tf.studies.grids import Arm, Phantoms, Study
from cxr_tf.training.fit_config import FitConfig

EVAL_SPLIT = "test"


@dataclass(frozen=True)
class ArmResult:
    """A trained and evaluated arm: its run directory and whether this call trained or evaluated it."""

    arm: Arm
    run: Path
    trained: bool
    evaluated: bool


def select_arms(study: Study, names: Sequence[str]) -> list[Arm]:
    """The arms called ``names`` (all when empty), in the study's order; an unknown name is a ``UserError``."""
    known = [arm.name for arm in study.arms]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UserError(f"--arms: {study.name} has no arm(s) {', '.join(unknown)}; its arms: {', '.join(known)}")
    return [arm for arm in study.arms if not names or arm.name in names]


def arm_config(arm: Arm, *, records: str, out: Path, phantoms: Phantoms | None = None,
               overrides: Mapping[str, Any] | None = None, deterministic: bool = False) -> FitConfig:
    """The arm's ``FitConfig``: its recipe, then its own keys, then the reduced grid of ``phantoms``
    (``--phantoms``), then ``overrides`` (``--set``), with ``records``, ``out/<arm>`` and ``deterministic`` last."""
    values = {**config_lib.load_toml(arm.recipe_path), **arm.overrides}
    if phantoms is not None:
        values = phantoms.reduce(arm.name, values)
    values.update(overrides or {})
    values.update(records=records, out=str(out / arm.name), deterministic=deterministic)
    values = {key: value for key, value in values.items() if value is not None}
    return config_lib.build(FitConfig, values, f"{arm.recipe_path.name} (arm {arm.name})")


def evaluated(run: Path) -> bool:
    return (run / "eval" / EVAL_SPLIT / "metrics.json").exists()


def evaluate_arm(run: Path, study: Study, *, resamples: int, seed: int) -> None:
    """Evaluate a finished run on ``test`` into ``<run>/eval/test`` atomically (scratch directory, rename)."""
    from cxr_tf.evaluation import evaluate

    # An existing eval/test has no metrics.json (``evaluated``): an older partial one, replaced.
    with atomic.staged_directory(run / "eval" / EVAL_SPLIT) as scratch:
        evaluate.evaluate(run, split=EVAL_SPLIT, threshold=evaluate.parse_threshold(study.threshold),
                          resamples=resamples, seed=seed, out=scratch, noise_sweep=study.noise_sweep)


def run_arm(arm: Arm, cfg: FitConfig, study: Study, *, resamples: int, seed: int) -> ArmResult:
    """Train (or resume, or skip when finished) and evaluate one arm."""
    import keras

    from cxr_tf.training.fit import train

    keras.backend.clear_session()  # the previous arm's graph and memory
    summary = train(cfg)
    run = Path(summary.run)
    fresh = not evaluated(run)
    if fresh:
        evaluate_arm(run, study, resamples=resamples, seed=seed)
    return ArmResult(arm, run, trained=not summary.finished_earlier, evaluated=fresh)
