"""Callbacks of a training run beyond Keras' own: timing, input images in TensorBoard, resumable best-checkpointing.

A run directory survives being killed: Keras' ``BackupAndRestore`` restores weights, optimizer and epoch;
``best_checkpoint`` re-reads the best monitored value from ``history.csv`` so a resumed run never
overwrites ``best.keras`` with a worse model; ``EpochTiming`` appends to ``timing.json``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

import keras


class EpochTiming(keras.callbacks.Callback):
    """Wall time and images/s of every epoch, appended to a JSON file (kept across resumes).

    Args:
        path: ``timing.json`` of the run.
        images_per_epoch: training images seen per epoch (steps x global batch).
    """

    def __init__(self, path: Path, images_per_epoch: int) -> None:
        super().__init__()
        self.path, self.images = Path(path), images_per_epoch
        self.start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self.start
        record = json.loads(self.path.read_text()) if self.path.exists() else {"epochs": []}
        record["epochs"] = [e for e in record["epochs"] if e["epoch"] != epoch + 1]
        record["epochs"].append({"epoch": epoch + 1, "seconds": round(seconds, 3),
                                 "images_per_second": round(self.images / seconds, 2)})
        times = [e["seconds"] for e in record["epochs"]]
        record["mean_seconds_per_epoch"] = round(sum(times) / len(times), 3)
        self.path.write_text(json.dumps(record, indent=2))


class InputImages(keras.callbacks.Callback):
    """Writes a few training inputs to TensorBoard once, one image per channel.

    With ``channels="enhance"`` this shows the image, its histogram-equalised and its contrast-stretched
    versions side by side, so a run's inputs can be checked by eye.

    Args:
        log_dir: the run's TensorBoard directory. images: float32 [N, H, W, C] in 0-255.
    """

    def __init__(self, log_dir: Path, images: Any) -> None:
        super().__init__()
        self.log_dir, self.images = str(log_dir), images

    def on_train_begin(self, logs: dict | None = None) -> None:
        import tensorflow as tf

        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            pixels = tf.cast(self.images, tf.float32) / 255.0
            for c in range(pixels.shape[-1]):
                tf.summary.image(f"inputs/channel_{c}", pixels[..., c:c + 1], step=0,
                                 max_outputs=int(pixels.shape[0]))
        writer.close()


def best_so_far(history_csv: Path, monitor: str, mode: str) -> float | None:
    """The best ``monitor`` value logged in a run's ``history.csv`` (``None`` before the first epoch)."""
    if not history_csv.exists():
        return None
    with open(history_csv, newline="") as fh:
        values = [float(row[monitor]) for row in csv.DictReader(fh) if row.get(monitor) not in (None, "")]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def best_checkpoint(path: Path, history_csv: Path, monitor: str, mode: str) -> keras.callbacks.ModelCheckpoint:
    """``ModelCheckpoint`` keeping the best model, seeded with the best value of earlier (killed) runs."""
    return keras.callbacks.ModelCheckpoint(
        str(path), monitor=monitor, mode=mode, save_best_only=True,
        initial_value_threshold=best_so_far(history_csv, monitor, mode),
    )
