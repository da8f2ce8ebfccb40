"""``python -m cxr_tf.evaluate``: score a finished run on a split, with patient-bootstrap 95 % CIs.

Writes ``predictions.csv`` and ``metrics.json`` (and ``noise_sweep.csv``) into ``<run>/eval/<split>/`` and
the run's validation-chosen thresholds into ``<run>/thresholds.json``; prints the per-class table.

Examples:
    python -m cxr_tf.evaluate --run runs/demo
    python -m cxr_tf.evaluate --run runs/demo --records records/nih --split test      # external validation
    python -m cxr_tf.evaluate --run runs/demo --noise-sweep poisson:0,0.5,1 gaussian:0,5,10
    python -m cxr_tf.evaluate --run runs/demo --calibrate temperature --at-specificity 0.8 0.9 0.95
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Sequence

from cxr_tf import cli, cli_options, config
from cxr_tf.config import option, required


@dataclasses.dataclass(kw_only=True)
class EvaluateConfig:
    """Flags of evaluate."""

    run: str = required("run directory of python -m cxr_tf.fit")
    split: str = option("test", "split of the records to evaluate")
    records: str = option("", "records directory (default: the run's); another dataset with the run's classes "
                              "for external validation")
    threshold: str = option("youden", "operating threshold per class: youden or f1 (chosen on the val split) "
                                      "or a fixed probability such as 0.5")
    resamples: int = option(1000, "patient-bootstrap resamples of the 95 %% confidence intervals (0: none)",
                            at_least=0)
    seed: int = option(0, "seed of the bootstrap and of the sweep's noise", at_least=0, at_most=config.SEED_MAX)
    batch_size: int = option(64, "prediction batch size", at_least=1)
    out: str = option("", "output directory (default <run>/eval/<split>)")
    noise_sweep: list[str] = option([], "noise levels to re-evaluate under, NAME:LEVEL,LEVEL,... "
                                        "(poisson, gaussian, blur, jpeg), e.g. gaussian:0,5,10")
    verify: bool = option(False, "check every shard's sha256 against dataset.json first (reads the records once)")
    calibrate: str = option("", "fit probability calibration on the val split: temperature or platt; saved as "
                                "<run>/calibration.json and carried into exports (default: none)")
    bins: int = option(10, "equal-count bins of the expected calibration error and reliability diagram")
    at_specificity: list[float] = option([0.90, 0.95], "operating points: sensitivity at these specificities "
                                                       "(thresholds chosen on val)")
    at_sensitivity: list[float] = option([0.90, 0.95], "operating points: specificity at these sensitivities "
                                                       "(thresholds chosen on val)")
    gallery: int = option(3, "most confident false positives and false negatives per class shown with "
                             "Grad-CAM (0: no gallery)")


def main(argv: Sequence[str]) -> int:
    cfg = cli_options.parse(EvaluateConfig, argv, prog="python -m cxr_tf.evaluate",
                            description="Evaluate a trained run: per-class AUC, AP, sensitivity, specificity with CIs.")
    from cxr_tf.evaluation import evaluate
    from cxr_tf.evaluation.formatting import summary_table

    start = time.perf_counter()
    result = evaluate.evaluate(cfg.run, split=cfg.split, records=cfg.records or None,
                               threshold=evaluate.parse_threshold(cfg.threshold), resamples=cfg.resamples,
                               seed=cfg.seed, batch_size=cfg.batch_size, out=cfg.out or None,
                               noise_sweep=cfg.noise_sweep, calibrate=cfg.calibrate or None, bins=cfg.bins,
                               at_specificity=cfg.at_specificity, at_sensitivity=cfg.at_sensitivity,
                               gallery=cfg.gallery, argv=argv, verify=cfg.verify)
    metrics = result.metrics
    print(f"{metrics['run']} on {metrics['records']}/{metrics['split']}: {metrics['examples']} images, "
          f"{metrics['patients']} patients, threshold {metrics['threshold']['method']}")
    print(summary_table(metrics))
    for row in metrics.get("noise_sweep", []):
        print(f"{row['noise']}:{row['level']:g}  mean AUC " + ("n/a" if row["mean_auc"] is None
                                                            else f"{row['mean_auc']:.3f}"))
    print(f"wrote {result.directory} in {time.perf_counter() - start:.1f} s")
    return 0


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
