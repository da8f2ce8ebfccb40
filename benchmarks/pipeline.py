"""Benchmark the input pipeline on generated NIH-like records (256 px stored -> 224 px); one run prints all.

    python benchmarks/pipeline.py [--n 512] [--stored 256] [--size 224] [--epochs 4]

Throughput (img/s) of, on the same images:
  * ceiling: bare tf.data read + decode + resize + batch (1 channel, as the issue defines it), and the same
    with the gray image tiled to 3 channels: a 3-channel float batch alone costs ~0.4 ms CPU per 224-px
    image in copies, which any 3-channel output (enhance, gray3) pays;
  * make_dataset as fit uses it: channels="gray1" (the model makes its channels), no augmentation (goal
    >= 0.90x the 1-channel ceiling), and with augment=True (goal >= 0.60x);
  * make_dataset with channels="enhance" (the channels made in tf.data, for users who want them there),
    without and with augmentation, against the ceiling tiled to 3 channels;
  * a keras.utils.PyDataset doing decode + resize + enhancement with cv2 + numpy, the way such loaders
    are usually written, with 1 and 2 worker processes (goal: ours >= 1.0x of it);
  * the same records read by TFDS (``tfds.builder_from_directory``: build_records writes TFDS metadata)
    with the ceiling's decode + resize.

The ``tfds.benchmark`` column is TFDS' own measurement of one more pass of each pipeline (examples/s after
the first batch), a cross-check of ours with a tool users know.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.records_util writes the records

import keras  # noqa: E402

BATCH = 32


def nih_like(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth vertical/horizontal gradients, a few Gaussian blobs and sensor noise, uint8 [size, size]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(n):
        image = 60 + 90 * y * rng.uniform(0.5, 1.5) + 40 * np.sin(np.pi * x) * rng.uniform(0.5, 1.5)
        for _ in range(rng.integers(2, 6)):
            cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.03, 0.15)
            image += rng.uniform(-60, 80) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
        image += rng.normal(0, 4, image.shape)
        images.append(image.clip(0, 255).astype(np.uint8))
    return images


def epoch_rate(batches) -> tuple[float, float]:
    """(img per wall second, img per CPU second of this process) over one pass of ``batches``."""
    count, wall, cpu = 0, time.perf_counter(), time.process_time()
    for batch in batches:
        count += len(batch[0])
    return count / (time.perf_counter() - wall), count / max(time.process_time() - cpu, 1e-9)


def best_rates(pipelines: dict, rounds: int) -> dict[str, tuple[float, float]]:
    """Best epoch of ``rounds`` for each pipeline, measured in turns so a load spike from other
    processes on the machine hits every pipeline alike rather than one of them."""
    for batches in pipelines.values():
        next(iter(batches))  # warm-up: tracing, worker start-up, autotuning
    best = {name: (0.0, 0.0) for name in pipelines}
    for _ in range(rounds):
        for name, batches in pipelines.items():
            wall, cpu = epoch_rate(batches)
            best[name] = (max(best[name][0], wall), max(best[name][1], cpu))
    return best


def tfds_reader(records: str, size: int):
    """The records as TFDS reads them (``as_dataset``), decoded and resized to ``size`` like ``ceiling``."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    import cxr_tf.tfds

    builder = cxr_tf.tfds.builder_from_records(records)
    # TFDS caches a small dataset's decoded examples in memory by default, which would time a cache.
    read_config = tfds.ReadConfig(interleave_cycle_length=4, try_autocache=False)
    return (builder.as_dataset(split="train", read_config=read_config)
            .map(lambda e: (tf.image.resize(tf.cast(e["image"]["encoded"], tf.float32), [size, size]),
                            e["labels"]["state"]), num_parallel_calls=tf.data.AUTOTUNE)
            .batch(BATCH).prefetch(tf.data.AUTOTUNE))


def tfds_rate(batches) -> float:
    """Examples/s of one more pass of ``batches`` by ``tfds.benchmark`` (its first batch excluded)."""
    import tensorflow_datasets as tfds

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its own report
        result = tfds.benchmark(batches, batch_size=BATCH)
    return float(result.stats["avg"]["lasts"])


def ceiling(records: str, size: int, channels: int = 1):
    import tensorflow as tf

    from cxr_tf.pipeline import parse
    from cxr_tf.records import info

    paths = info.shard_paths(records, info.RecordsInfo.load(records), "train")

    def decode(serialized):
        element = parse.decode_example(serialized, 1)
        image = tf.image.resize(tf.cast(parse.decode_image(element[parse.IMAGE]), tf.float32), [size, size])
        return (image if channels == 1 else tf.tile(image, [1, 1, channels])), element[parse.STATE]

    return (tf.data.Dataset.from_tensor_slices(paths)
            .interleave(tf.data.TFRecordDataset, cycle_length=len(paths), num_parallel_calls=tf.data.AUTOTUNE)
            .map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH).prefetch(tf.data.AUTOTUNE))


class EnhancedPngs(keras.utils.PyDataset):
    """PNG files -> (float32 [B, size, size, 3] image/equalized/stretched, labels), with cv2 + numpy."""

    def __init__(self, files: list[str], size: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.files, self.size = files, size

    def __len__(self) -> int:
        return -(-len(self.files) // BATCH)

    def __getitem__(self, index: int):
        images = []
        for path in self.files[index * BATCH:(index + 1) * BATCH]:
            gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
            gray = cv2.resize(gray, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
            low, high = np.percentile(gray, [1, 99])
            stretched = np.clip((gray.astype(np.float32) - low) * 255 / max(high - low, 1), 0, 255)
            images.append(np.stack([gray, cv2.equalizeHist(gray), stretched], axis=-1).astype(np.float32))
        return np.stack(images), np.zeros((len(images), 1), np.float32)


class Epochs:
    """Epochs of a PyDataset as model.fit drives it (keras' adapter: worker pool, queue, epoch hooks)."""

    def __init__(self, dataset: keras.utils.PyDataset) -> None:
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        self.adapter = PyDatasetAdapter(dataset, shuffle=False)

    def __iter__(self):
        self.adapter.on_epoch_begin()
        try:
            yield from self.adapter.get_numpy_iterator()
        finally:  # also when the warm-up abandons the epoch after one batch
            self.adapter.on_epoch_end()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--stored", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=4, help="rounds; the best epoch counts")
    args = parser.parse_args()

    from cxr_tf.pipeline import make_dataset
    from tests.records_util import write_records

    with tempfile.TemporaryDirectory() as tmp:
        images = nih_like(args.n, args.stored)
        records = write_records(Path(tmp), images, [[i % 2] for i in range(args.n)], ["Finding"], shards=4)
        files = []
        for i, image in enumerate(images):
            files.append(str(Path(tmp) / f"{i:05d}.png"))
            cv2.imwrite(files[-1], image)

        def ours(**kwargs):
            return make_dataset(records, "train", image_size=args.size, batch_size=BATCH, shuffle=False,
                                seed=0, **kwargs)

        pipelines = {
            "ceiling (decode+resize)": ceiling(records, args.size),
            "ceiling, tiled to 3 channels": ceiling(records, args.size, channels=3),
            "fit input (gray1)": ours(channels="gray1", augment=False),
            "fit input+augment": ours(channels="gray1", augment=True),
            "enhance": ours(channels="enhance", augment=False),
            "enhance+augment": ours(channels="enhance", augment=True),
            "PyDataset cv2 workers=1": Epochs(EnhancedPngs(files, args.size, workers=1)),
            "PyDataset cv2 workers=2": Epochs(EnhancedPngs(files, args.size, workers=2, use_multiprocessing=True)),
            "TFDS as_dataset (decode+resize)": tfds_reader(records, args.size),
        }
        results = best_rates(pipelines, args.epochs)
        checks = {name: tfds_rate(batches) for name, batches in pipelines.items()}
    print(f"{args.n} images {args.stored} -> {args.size} px, best of {args.epochs} epochs")
    print(f"{'':32s} {'img/s':>8s} {'img/CPU-s':>10s} {'tfds.benchmark':>15s}")
    for name, (wall, cpu) in results.items():
        # Worker processes' CPU time is not this process's: per-CPU-second only for in-process loaders.
        print(f"{name:32s} {wall:8.0f} {cpu if 'workers=2' not in name else float('nan'):10.0f} {checks[name]:15.0f}")
    for top_name, suffix, goals in (
            ("ceiling (decode+resize)", "ceiling", (("fit input (gray1)", 0.90), ("fit input+augment", 0.60))),
            ("ceiling, tiled to 3 channels", "ceiling3", (("enhance", 0.85), ("enhance+augment", 0.60)))):
        top = results[top_name]
        for name, goal in goals:
            wall, cpu = results[name]
            print(f"{name + ' / ' + suffix:36s} {wall / top[0]:8.2f} {cpu / top[1]:10.2f}  (goal >= {goal})")
    for workers in (1, 2):
        ratio = results["enhance"][0] / results[f"PyDataset cv2 workers={workers}"][0]
        print(f"{f'enhance / PyDataset w={workers}':32s} {ratio:8.2f}             (goal >= 1.0)")


if __name__ == "__main__":
    main()
