"""Benchmark the patient-level bootstrap: vectorised vs a scikit-learn loop, measured in one run.

    python benchmarks/bootstrap.py [--n 100000] [--classes 5] [--resamples 1000]

Goal (evaluate issue): 1,000 resamples of 100k predictions x 5 classes in under 10 s. The loop is
timed on a few resamples and extrapolated (a full run would take minutes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from cxr_tf.evaluation import bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = rng.random((args.n, args.classes)) < 0.2
    scores = np.clip(0.3 * y + rng.normal(0.4, 0.2, y.shape), 0, 1).astype(np.float32)
    patients = rng.integers(0, args.n // 3, args.n)

    start = time.perf_counter()
    bootstrap.bootstrap(y, scores, patients, resamples=args.resamples, seed=0)
    vectorised = time.perf_counter() - start

    loop_draws = 5
    weights = next(bootstrap.patient_weights(patients, loop_draws, seed=0))
    start = time.perf_counter()
    for w in weights:
        for k in range(args.classes):
            roc_auc_score(y[:, k], scores[:, k], sample_weight=w)
            average_precision_score(y[:, k], scores[:, k], sample_weight=w)
    loop = (time.perf_counter() - start) / loop_draws * args.resamples

    print(f"{args.resamples} resamples x {args.n} predictions x {args.classes} classes (AUC + AP)")
    print(f"vectorised           : {vectorised:7.2f} s  (goal < 10 s)")
    print(f"scikit-learn loop    : {loop:7.2f} s  (extrapolated from {loop_draws} resamples)")
    print(f"speed-up             : {loop / vectorised:7.1f}x")


if __name__ == "__main__":
    main()
