"""Callbacks of a training run beyond Keras' own: timing, progress output, per-batch and hyper-parameter
TensorBoard scalars, input images in TensorBoard, resumable best-checkpointing.

A run directory survives being killed: Keras' ``BackupAndRestore`` restores weights, optimizer and epoch;
``BestModel`` re-reads the best monitored value from ``history.csv`` so a resumed run never
overwrites ``best.keras`` with a worse model, and saves it atomically; ``EpochTiming`` appends to ``timing.json``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import keras

from cxr_tf import reporting
from cxr_tf.errors import DataError
from cxr_tf.io import atomic

log = reporting.logger("fit")


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
            # Keras picks the file format from the suffix, so the temporary ends in .keras too.
            with atomic.replacing(self.path, self.path.with_name(self.path.stem + ".partial.keras")) as partial:
                # A functional model over the same layers and weights, never compiled.
                keras.Model(self.model.input, self.model.output, name=self.model.name).save(partial)


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


# Running metrics shown while training, in this order when present (per-class AUCs would not fit a line).
SHOWN = ("loss", "accuracy", "mean_auc", "val_loss", "val_accuracy", "val_mean_auc")
LOG_SECONDS = 60.0  # default spacing of progress lines when stdout is not a terminal


def _clock(seconds: float) -> str:
    """``1:02:03`` / ``2:03``."""
    minutes, secs = divmod(int(round(max(seconds, 0.0))), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _metrics(logs: dict | None) -> str:
    return ", ".join(f"{name} {float(logs[name]):.4f}" for name in SHOWN if logs and name in logs)


class Progress(keras.callbacks.Callback):
    """What a user watching ``fit`` sees: a bar per epoch on a terminal, log lines elsewhere, a line per epoch.

    On a terminal (``stream.isatty()``) a tqdm bar shows steps, ETA of the epoch, img/s and the running
    loss. Otherwise (CI logs, ``nohup``, a scheduler's log file) a line goes to the ``cxr_tf`` logger every
    ``every`` steps, or every ``seconds`` when ``every`` is 0: step, running metrics, learning rate, img/s,
    ETA of the epoch and of the run. Both end each epoch with its metrics, wall time and img/s. Nothing is
    shown when the ``cxr_tf`` logger is above INFO (``--quiet``). Reading a metric waits for the step that
    computes it, so values are read only when shown, not at every step.

    Args:
        epochs: the run's last epoch (exclusive), for "epoch 3/10" and the ETA of the run.
        steps_per_epoch: training steps per epoch. batch_size: images per step (global batch).
        every: steps between log lines (0: time-based). seconds: time between log lines when ``every`` is 0.
        stream: the bar's stream (default ``sys.stdout``); the bar is drawn when ``stream.isatty()``.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, batch_size: int, *, every: int = 0,
                 seconds: float = LOG_SECONDS, stream: Any = None) -> None:
        super().__init__()
        self.epochs, self.steps, self.batch = epochs, steps_per_epoch, batch_size
        self.every, self.seconds = every, seconds
        self.stream = stream
        self.bar = None
        self.epoch, self.epoch_start, self.last_shown = 0, 0.0, 0.0
        self.epoch_seconds: list[float] = []

    def _stream(self) -> Any:
        return self.stream if self.stream is not None else sys.stdout

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.shown = log.isEnabledFor(logging.INFO)
        self.use_bar = self.shown and self._stream().isatty()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch, self.epoch_start = epoch, time.perf_counter()
        self.last_shown = self.epoch_start
        if self.use_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}", unit="step",
                            file=self._stream(), dynamic_ncols=True, leave=False)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.shown:
            return
        now, done = time.perf_counter(), batch + 1
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            if now - self.last_shown >= 0.5 or done == self.steps:  # a metric read waits for its step
                self.last_shown = now
                self.bar.set_postfix_str(f"{_metrics(logs)}, {self._rate(done, now):.1f} img/s",
                                         refresh=done == self.steps)
            return
        due = done % self.every == 0 if self.every else now - self.last_shown >= self.seconds
        if due and done < self.steps:
            self.last_shown = now
            rate = self._rate(done, now)
            epoch_left = (self.steps - done) * self.batch / rate
            log.info("epoch %d/%d step %d/%d: %s, learning_rate %.3g | %.1f img/s, ETA epoch %s, run %s",
                     self.epoch + 1, self.epochs, done, self.steps, _metrics(logs), self._learning_rate(), rate,
                     _clock(epoch_left), _clock(epoch_left + self._later_epochs(now - self.epoch_start, done)))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self.epoch_start
        self.epoch_seconds.append(seconds)
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.shown:
            left = (self.epochs - epoch - 1) * sum(self.epoch_seconds) / len(self.epoch_seconds)
            log.info("epoch %d/%d: %s, learning_rate %.3g | %s, %.1f img/s%s", epoch + 1, self.epochs,
                     _metrics(logs), self._learning_rate(), _clock(seconds), self.steps * self.batch / seconds,
                     f", ETA {_clock(left)}" if left > 0 else "")

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _rate(self, done: int, now: float) -> float:
        return done * self.batch / max(now - self.epoch_start, 1e-9)

    def _later_epochs(self, elapsed: float, done: int) -> float:
        """Seconds of the epochs after this one: measured epochs (with validation) when there are some."""
        per_epoch = (sum(self.epoch_seconds) / len(self.epoch_seconds) if self.epoch_seconds
                     else elapsed / done * self.steps)
        return (self.epochs - self.epoch - 1) * per_epoch

    def _learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class BatchScalars(keras.callbacks.Callback):
    """Every ``every`` steps, ``batch_loss`` and ``batch_learning_rate`` in TensorBoard (``log_dir``).

    The step is global (``epoch x steps_per_epoch + step``), so the two phases of a two-phase run and a
    resumed run continue one curve, where Keras' ``update_freq`` restarts its count at every ``fit`` call.
    Keras' batch logs hold the epoch's running mean of the loss; ``batch_loss`` is the mean over the
    ``every`` steps since the previous point, recovered from two running means, so the loss is read
    only at the points written.

    Args:
        log_dir: the run's ``tb/train``. every: steps between points (> 0). steps_per_epoch: of the run.
    """

    def __init__(self, log_dir: Path, every: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.log_dir, self.every, self.steps = str(log_dir), every, steps_per_epoch
        self.writer = None
        self.epoch, self.previous = 0, (0, 0.0)

    def on_train_begin(self, logs: dict | None = None) -> None:
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch, self.previous = epoch, (0, 0.0)  # Keras resets its running means each epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = self.epoch * self.steps + batch + 1
        if step % self.every or not logs or "loss" not in logs:
            return
        import tensorflow as tf

        done, mean = batch + 1, float(logs["loss"])
        seen, seen_mean = self.previous
        self.previous = (done, mean)
        with self.writer.as_default():
            tf.summary.scalar("batch_loss", (mean * done - seen_mean * seen) / (done - seen), step=step)
            tf.summary.scalar("batch_learning_rate",
                              float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)), step=step)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class HParams(keras.callbacks.Callback):
    """The run's resolved config in TensorBoard's HParams tab, written when training starts.

    Args:
        log_dir: the run's ``tb/``. config: the resolved config (``config.to_dict``). trial: the run's name.
    """

    def __init__(self, log_dir: Path, config: dict[str, Any], trial: str) -> None:
        super().__init__()
        self.log_dir, self.config, self.trial = Path(log_dir), config, trial

    def on_train_begin(self, logs: dict | None = None) -> None:
        from cxr_tf.training import tensorboard

        tensorboard.write_hparams(self.log_dir, self.config, self.trial)


class ReplicaStatistics(keras.callbacks.Callback):
    """Averages the replicas' copies of non-trainable float weights (BatchNorm moving statistics) before
    each validation pass, so the model validated, backed up and saved is one model.

    Keras 3 creates BatchNorm's moving mean and variance with ``aggregation="none"``: under MirroredStrategy
    each replica updates its own copy from its own part of the batch, and saving reads the first replica's.
    Measured: after one epoch of 210 phantoms on 2 logical CPUs (cnn5), validation AUCs of the replicas'
    mixture differed from the saved model's by up to 0.15. Moving averages are linear, so the mean of the
    copies is the moving average of the replica-averaged batch statistics (for the variance, of the
    replicas' within-batch variances). Integer weights (random-layer seeds) are left alone.

    Args:
        strategy: the ``tf.distribute.Strategy`` the model was built under.
    """

    def __init__(self, strategy: Any) -> None:
        super().__init__()
        self.strategy = strategy

    def on_test_begin(self, logs: dict | None = None) -> None:
        import tensorflow as tf

        for variable in self.model.non_trainable_variables:
            if not tf.as_dtype(variable.dtype).is_floating:
                continue
            copies = self.strategy.experimental_local_results(variable.value)
            if len(copies) > 1:
                mean = tf.add_n([tf.convert_to_tensor(c) for c in copies]) / len(copies)
                for copy in copies:
                    copy.assign(mean)


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' ``TerminateOnNaN``, raising ``DataError`` naming the epoch and step (both from 1) of the first
    non-finite training loss instead of only stopping.

    ``TerminateOnNaN`` ends ``fit`` as if it had finished, so the run would write its summary; the error
    leaves the run unfinished (no ``summary.json``) and ``best.keras`` as the last finite epoch saved it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise DataError(f"the training loss became {float(loss)} at epoch {self.epoch + 1}, step {batch + 1}; "
                            "stopped, the run is not finished (lower --lr or set --clipnorm, then re-run)")
