"""Benchmark Grad-CAM of a gallery: one pass per class vs passes of one class per image, measured in one run.

    python benchmarks/grad_cam.py [--model efficientnetb4] [--image-size 32] [--classes 5] [--per-class 6]

The error gallery and the hit rate need each image's map of its own class. A pass per class runs the
(eager) network once per class; ``explain.grad_cam`` with one class per image runs it once per
``CAM_BATCH`` images. Deep networks on a CPU are bound by per-op overhead, not arithmetic, so the passes
count. Randomly initialised weights: the timing does not depend on them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cxr_tf.evaluation import explain
from cxr_tf.models import build_model
from cxr_tf.models.heads import HEADS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnetb4")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=6, help="gallery images of each class")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    model = build_model(args.model, num_classes=args.classes, image_size=args.image_size, weights="none")
    head = HEADS.get("multilabel")
    classes = np.repeat(np.arange(args.classes), args.per_class)
    images = np.random.default_rng(0).uniform(0, 255, (len(classes), args.image_size, args.image_size, 1))
    explain.grad_cam(model, images[:2], 0, head)  # Keras builds the probe's layers once

    for _ in range(args.repeats):
        start = time.perf_counter()
        for k in range(args.classes):
            explain.grad_cam(model, images[classes == k], k, head)
        per_class = time.perf_counter() - start
        start = time.perf_counter()
        explain.grad_cam(model, images, classes, head)
        mixed = time.perf_counter() - start
        print(f"{args.model} {args.image_size} px, {len(images)} images of {args.classes} classes: a pass per class "
              f"{per_class:.2f} s, one class per image {mixed:.2f} s ({per_class / mixed:.2f}x)")


if __name__ == "__main__":
    main()
