"""Serving parity on a finished, evaluated run: predict on the source image files vs evaluate on their records.

    python -m cxr_tf.demo --out /tmp/demo            # or any run evaluated on its test split
    python benchmarks/serving_parity.py --run /tmp/demo/run --images /tmp/demo/phantoms [--split test]

Reads ``RUN/eval/SPLIT/predictions.csv`` (evaluate's probabilities on the records), predicts the same
images from their files under ``--images`` (the image root the records were built from) with
``cxr_tf.serving.predict`` and prints max and mean |dp| per class (goal: max <= 1e-3).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from cxr_tf.evaluation import columns
    from cxr_tf.serving import predict

    evaluated = pd.read_csv(args.run / "eval" / args.split / "predictions.csv")
    model = predict.load_model(args.run)
    classes = model.metadata.classes
    items = [predict.Item(path, args.images / path) for path in evaluated["path"]]
    predicted = predict.predict(model, items, batch_size=64)
    failed = [p for p in predicted if p.error is not None]
    if failed:
        raise SystemExit(f"{len(failed)} file(s) failed, first: {failed[0].path}: {failed[0].error}")
    served = np.array([[p.probabilities[name] for name in classes] for p in predicted])
    delta = np.abs(served - evaluated[[columns.probability(name) for name in classes]].to_numpy())
    print(f"{len(items)} images of {args.run} split {args.split}: |p(file) - p(record)|")
    for k, name in enumerate(classes):
        print(f"  {name:20s} max {delta[:, k].max():.2e}  mean {delta[:, k].mean():.2e}")
    print(f"  max over classes {delta.max():.2e} (goal <= 1e-3)")


if __name__ == "__main__":
    main()
