"""Benchmark build_records on generated 1024-px NIH-like PNGs; prints ratios measured in one run.

    python benchmarks/build_records.py [--n 1000] [--size 1024] [--stored 256]

Reports, side by side on the same images:
  * speed-up of 2 decoding workers over 1 (goal >= 1.7x on 2 cores);
  * per-image cost of a 1-worker build / bare read+decode+resize+encode in a loop (goal <= 1.25);
  * with apache-beam installed, the same build on Beam's DirectRunner (multi-process mode, 2 workers)
    next to the 2-worker process pool (no goal: the DirectRunner is for correctness, clusters for speed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Heavy imports live inside the functions: decoding workers re-import this __main__ module, and
# pandas or TensorFlow there would be charged to the workers' start-up.


def generate(out: Path, n: int, size: int) -> list[Path]:
    subprocess.run([sys.executable, "-m", "cxr_tf.synth", "--out", str(out), "--n", str(n),
                    "--size", str(size), "--style", "nih", "--seed", "0", "--workers", "2"], check=True)
    return sorted(out.rglob("*.png"))


def bare(files: list[Path], stored: int) -> float:
    """Seconds for read + decode + resize + encode of every file, the floor of any build."""
    import cv2
    import numpy as np

    start = time.perf_counter()
    for file in files:
        image = cv2.imdecode(np.frombuffer(file.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
        small = cv2.resize(image, (stored, stored), interpolation=cv2.INTER_AREA)
        cv2.imencode(".png", small)
    return time.perf_counter() - start


def build(root: Path, files: list[Path], stored: int, workers: int, out: Path, beam: bool = False) -> float:
    import pandas as pd

    from cxr_tf.datasets import manifest as mf
    from cxr_tf.records import build as rb

    rel = [str(f.relative_to(root)) for f in files]
    frame = pd.DataFrame({mf.PATH: rel, mf.PATIENT: rel, mf.VIEW: "frontal", mf.PROJECTION: "PA",
                          mf.SOURCE_SPLIT: "", mf.BOXES: "[]", "Finding": pd.array([0] * len(rel), dtype="Int8"),
                          mf.SPLIT: "train"})
    manifest = mf.Manifest("bench", "multilabel", ["Finding"], frame, image_root=root)
    options = rb.RecordOptions(image_size=stored)
    start = time.perf_counter()
    if beam:
        from cxr_tf.records import beam as rbeam

        rbeam.build_records_beam(manifest, str(out), options, beam_options=[
            "--runner=DirectRunner", "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"])
    else:
        rb.build_records(manifest, str(out), options, workers=workers)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--stored", type=int, default=256)
    args = parser.parse_args()
    import tensorflow as tf  # noqa: F401  (imported before timing: its start-up is not build cost)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "nih"
        files = generate(root, args.n, args.size)
        bare(files[:8], args.stored)  # warm the page cache and OpenCV
        t_bare = bare(files, args.stored)
        t_one = build(root, files, args.stored, 1, Path(tmp) / "w1")
        t_two = build(root, files, args.stored, 2, Path(tmp) / "w2")
        t_beam = build(root, files, args.stored, 2, Path(tmp) / "beam", beam=True) if _has_beam() else None
    n = len(files)
    print(f"images: {n} x {args.size}px PNG -> {args.stored}px PNG records")
    print(f"bare decode+resize+encode : {n / t_bare:7.1f} img/s")
    print(f"build_records, 1 worker   : {n / t_one:7.1f} img/s")
    print(f"build_records, 2 workers  : {n / t_two:7.1f} img/s")
    print(f"speed-up 2 workers / 1    : {t_one / t_two:5.2f}x  (goal >= 1.7)")
    print(f"per-image cost / bare     : {t_one / t_bare:5.2f}   (goal <= 1.25)")
    if t_beam is not None:
        print(f"Beam DirectRunner, 2 proc : {n / t_beam:7.1f} img/s")
        print(f"DirectRunner / pool (2)   : {t_two / t_beam:5.2f}x  (throughput ratio; no goal)")


def _has_beam() -> bool:
    import importlib.util

    return importlib.util.find_spec("apache_beam") is not None


if __name__ == "__main__":
    main()
