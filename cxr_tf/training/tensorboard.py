"""A run's TensorBoard log (``<run>/tb``): what fit, evaluate and explain write there besides Keras' own.

Layout (one TensorBoard "run" per sub-directory)::

    tb/                hyper-parameters (HParams tab), written by fit
    tb/train/          Keras: epoch_* and, every --tensorboard-every steps, batch_loss,
                       batch_learning_rate (and batch_* of the metrics); inputs/channel_*
    tb/validation/     Keras: epoch_* of the validation pass
    tb/<split>/        evaluate: epoch_mean_auc, epoch_auc_<class>, epoch_accuracy at the run's last
                       epoch, so the test point sits at the end of the validation curve
    tb/explain/        explain: gradcam/<image>/<class> overlays
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping

import numpy as np

LOG_DIR = "tb"


def log_dir(run: Path, name: str = "") -> Path:
    """``<run>/tb`` or its sub-directory ``name``."""
    return Path(run) / LOG_DIR / name if name else Path(run) / LOG_DIR


def last_epoch(run: Path) -> int:
    """0-based index of the run's last logged epoch (Keras' TensorBoard step of epoch scalars); 0 if none."""
    history = Path(run) / "history.csv"
    if not history.exists():
        return 0
    with open(history, newline="") as fh:
        epochs = [int(row["epoch"]) for row in csv.DictReader(fh) if row.get("epoch")]
    return max(epochs, default=0)


def write_scalars(directory: Path, scalars: Mapping[str, float | None], step: int) -> None:
    """Scalar summaries ``tag -> value`` at ``step``; ``None`` values (undefined metrics) are left out."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(directory))
    with writer.as_default():
        for tag, value in scalars.items():
            if value is not None:
                tf.summary.scalar(tag, float(value), step=step)
    writer.close()


def write_images(directory: Path, images: Mapping[str, np.ndarray], step: int = 0) -> None:
    """Image summaries ``tag -> uint8 [H, W, 3]`` BGR (OpenCV's order, as ``explain.overlay`` returns)."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(directory))
    with writer.as_default():
        for tag, bgr in images.items():
            tf.summary.image(tag, np.ascontiguousarray(bgr[np.newaxis, ..., ::-1]), step=step)
    writer.close()


def hparam_values(config: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """A resolved command config as HParams values: lists joined with spaces, ``None`` as ``"none"``."""
    def value(v: Any) -> bool | int | float | str:
        if isinstance(v, (bool, int, float, str)):
            return v
        if v is None:
            return "none"
        if isinstance(v, (list, tuple)):
            return " ".join(map(str, v))
        return str(v)

    return {key: value(v) for key, v in config.items()}


def write_hparams(directory: Path, config: Mapping[str, Any], trial: str) -> None:
    """The run's hyper-parameters for TensorBoard's HParams tab (``tensorboard.plugins.hparams``)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(str(directory))
    with writer.as_default():
        hp.hparams(hparam_values(config), trial_id=trial)
    writer.close()
