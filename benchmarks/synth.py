"""Benchmark the phantom generator: images/s with 1 and 2 workers, side by side, same images.

    python benchmarks/synth.py [--n 400] [--size 256] [--style nih]

Goal: >= 50 images/s at 256 px on one core (drawing, PNG encoding and writing included).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cxr_tf.phantoms import dataset, generate, writers


def rate(n: int, size: int, style: str, workers: int) -> float:
    """Images per second of one full run (label files included) into a fresh directory."""
    layout = writers.STYLES.get(style)
    prevalence = {f: generate.DEFAULT_PREVALENCE[f] for f in layout.findings}
    specs = generate.plan(n, 0, prevalence, single_label=layout.single_label, label_noise=0.02)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        dataset.write_dataset(Path(out), specs, style, size, 0.5, 0, workers,
                              writers.LabelOptions(size, 0, uncertain=0.1, blank=0.5))
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--style", default="nih", choices=writers.STYLES.names())
    args = parser.parse_args()
    one, two = (rate(args.n, args.size, args.style, workers) for workers in (1, 2))
    print(f"{args.n} images at {args.size} px, style {args.style}")
    print(f"{'workers':>8} {'images/s':>9}")
    print(f"{1:>8} {one:>9.1f}   (goal >= 50)")
    print(f"{2:>8} {two:>9.1f}   ({two / one:.2f}x)")


if __name__ == "__main__":
    main()
