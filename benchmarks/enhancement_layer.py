"""Cost of the enhancement channels inside the model; one run prints all.

    python benchmarks/enhancement_layer.py [--size 224] [--batch 4] [--steps 5] [--rounds 3]

  * train step: a DenseNet121 (no ImageNet weights needed: the cost does not depend on them) whose input
    layer is ``EnhancementChannels`` against the same network with ``GrayToRGB``, one gray channel in,
    same batch; seconds per ``train_on_batch`` (goal: with / without <= 1.03);
  * the layer alone, in images/s: ``EnhancementChannels`` on batches of 32 (``tf.function``, with and
    without XLA) next to the tf.data enhancement it replaces in fit (``make_dataset``'s per-image map,
    ``to_channels(image, "enhance")``, parallel over the cores), on the same in-memory images.
Variants take turns round by round and the best round counts, so a load spike from other processes on the
machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.pipeline import nih_like  # noqa: E402

LAYER_BATCH = 32


def step_seconds(models: dict, x, y, steps: int, rounds: int) -> dict[str, float]:
    """Best seconds per train step over ``rounds`` of ``steps`` steps, the models taking turns."""
    for model in models.values():
        model.train_on_batch(x, y)  # warm-up: tracing
    best = {name: float("inf") for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)
            best[name] = min(best[name], (time.perf_counter() - start) / steps)
    return best


def images_per_second(runs: dict, count: int, rounds: int) -> dict[str, float]:
    """Best images/s over ``rounds`` for each callable (one call = ``count`` images), taking turns."""
    for run in runs.values():
        run()
    best = {name: 0.0 for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = max(best[name], count / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=256, help="images of the layer-alone comparison")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from cxr_tf.models import build_model
    from cxr_tf.models.layers import EnhancementChannels
    from cxr_tf.pipeline.dataset import to_channels

    gray = np.stack(nih_like(args.images, args.size))[..., np.newaxis].astype(np.float32)

    models = {}
    for channels in ("gray3", "enhance"):
        model = build_model("densenet121", num_classes=5, image_size=args.size, channels=channels)
        model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
        models[channels] = model
    x, y = gray[:args.batch], np.zeros((args.batch, 5), np.float32)
    steps = step_seconds(models, x, y, args.steps, args.rounds)

    layer = EnhancementChannels()
    batches = tf.constant(gray.reshape(-1, LAYER_BATCH, args.size, args.size, 1))
    graph, xla = tf.function(layer), tf.function(layer, jit_compile=True)
    in_memory = tf.data.Dataset.from_tensor_slices(gray)
    per_image = (in_memory.map(lambda image: to_channels(image, "enhance"), num_parallel_calls=tf.data.AUTOTUNE)
                 .batch(LAYER_BATCH).prefetch(tf.data.AUTOTUNE))
    bare = in_memory.batch(LAYER_BATCH).prefetch(tf.data.AUTOTUNE)

    def drain(ds):
        for _ in ds:
            pass

    alone = images_per_second({
        "layer, tf.function": lambda: [graph(b).numpy() for b in batches],
        "layer, tf.function + XLA": lambda: [xla(b).numpy() for b in batches],
        "tf.data enhancement (map)": lambda: drain(per_image),
        "tf.data, no enhancement": lambda: drain(bare),
    }, len(gray), args.rounds)

    print(f"DenseNet121 train step, {args.size} px, batch {args.batch}, best of {args.rounds} x {args.steps} steps")
    print(f"  without (GrayToRGB)          {steps['gray3'] * 1000:8.1f} ms")
    print(f"  with EnhancementChannels     {steps['enhance'] * 1000:8.1f} ms")
    print(f"  with / without               {steps['enhance'] / steps['gray3']:8.3f}   (goal <= 1.03)")
    print(f"Enhancement alone, {args.images} images of {args.size} px, best of {args.rounds}")
    for name, rate in alone.items():
        print(f"  {name:28s} {rate:8.0f} img/s")


if __name__ == "__main__":
    main()
