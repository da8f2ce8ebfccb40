"""Callbacks of a training run beyond Keras' own: timing, input images in TensorBoard, resumable best-checkpointing.

A run directory survives being killed: Keras' ``BackupAndRestore`` restores weights, optimizer and epoch;
``BestModel`` re-reads the best monitored value from ``history.csv`` so a resumed run never
overwrites ``best.keras`` with a worse model, and saves it atomically; ``EpochTiming`` appends to ``timing.json``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
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


class BestModel(keras.callbacks.Callback):
    """Saves the model whenever ``monitor`` improves, atomically (temp file, then rename).

    The model is saved without its compile state (loss, metrics, optimizer): ``best.keras`` is the network
    for evaluation, export and transfer, and reloads with ``keras.saving.load_model`` in safe mode after
    ``import cxr_tf.models`` alone; the loss (built from the train split's label counts) and the
    optimizer's slots belong to the run's config and its resumable backup.

    Seeded with the best value of ``history.csv``, so a resumed run never overwrites ``best.keras`` with a
    worse model; the rename means a kill mid-save leaves the previous best intact.
    """

    def __init__(self, path: Path, history_csv: Path, monitor: str, mode: str = "max") -> None:
        super().__init__()
        self.path, self.monitor, self.mode = Path(path), monitor, mode
        self.best = best_so_far(history_csv, monitor, mode)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best = float(value)
            partial = self.path.with_name(self.path.stem + ".partial.keras")
            # A functional model over the same layers and weights, never compiled.
            keras.Model(self.model.input, self.model.output, name=self.model.name).save(partial)
            os.replace(partial, self.path)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras' ``BackupAndRestore`` keeping the previous backup too, so a kill during a save never loses the run.

    A backup torn by a kill is replaced by the previous one (Keras' ``double_checkpoint``); when the torn one
    was the first, the run starts over, which is what it would have done without it. List it before
    ``CSVLogger``, so an epoch is logged only once its backup is complete.

    Args:
        backup_dir: where this process writes its backups.
        restore_from: the backup directory to resume from, when it is not ``backup_dir``: a non-chief
            worker of a multi-worker run writes to a scratch directory but resumes from the chief's
            backup (the same weights: training is synchronous), copied into ``backup_dir`` first so the
            chief's files are only read.
    """

    def __init__(self, backup_dir: Path, restore_from: Path | None = None) -> None:
        super().__init__(str(backup_dir), double_checkpoint=True)
        self.backup_dir = Path(backup_dir)
        self.restore_from = Path(restore_from) if restore_from is not None else self.backup_dir

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.restore_from != self.backup_dir and self.restore_from.is_dir():
            shutil.copytree(self.restore_from, self.backup_dir, dirs_exist_ok=True)
        try:
            super().on_train_begin(logs)
        except OSError:
            shutil.rmtree(self.backup_dir, ignore_errors=True)
            self.backup_dir.mkdir(parents=True, exist_ok=True)
