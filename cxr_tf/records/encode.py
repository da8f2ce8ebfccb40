"""The per-image work of a records build: read, decode, resize, encode, one image at a time.

Kept apart from the planning code (``build.py``) so the decoding processes import only what they need
(OpenCV, NumPy, Pillow): a worker (``cxr_tf.io.workers.WorkerPool`` preloading this module) is ready in a
fraction of a second instead of importing pandas. Used by the local build and by the Beam runner. Workers
need no TensorFlow: they return ``Record`` objects, which the parent serialises and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cxr_tf.io import imaging
from cxr_tf.records import features

@dataclass(frozen=True)
class RecordOptions:
    """How images are stored.

    Attributes:
        image_size: stored side, pixels (images are square after ``resize``).
        resize: ``squash``, ``pad`` or ``crop`` (see ``imaging.resize``).
        encoding: ``png`` (lossless) or ``jpeg`` (quality 95).
        shard_mb: target shard size, megabytes (TFRecord guidance: 100-200 MB per shard).
        seed: seeds the order of rows inside each split's shards.
    """

    image_size: int = 256
    resize: str = "pad"  # imaging.RESIZE_MODES
    encoding: str = "png"  # imaging.ENCODINGS
    shard_mb: float = 100.0
    seed: int = 0


@dataclass(frozen=True)
class ImageTask:
    """One manifest row, in the plain types a worker process receives."""

    path: str
    patient_id: str
    view: str
    projection: str
    states: tuple[int, ...]
    boxes: tuple[tuple[int, float, float, float, float], ...]  # class index, x, y, w, h (source px)
    sex: str = ""  # M, F or "" (unknown)
    age: int = features.UNKNOWN_AGE  # years


@dataclass(frozen=True)
class Skipped:
    """A row that produced no record, with the reason written to skipped.csv."""

    path: str
    reason: str


def make_record(task: ImageTask, root: Path, options: RecordOptions) -> features.Record | Skipped:
    """Read, decode, resize and encode one image; a bad image becomes ``Skipped``, never an exception."""
    gray, reason = imaging.load_gray8_or_reason(task.path, root)
    if reason is not None:
        return Skipped(task.path, reason)
    try:
        stored, transform = imaging.resize(gray, options.image_size, options.resize)
        encoded = imaging.encode(stored, options.encoding)
    except imaging.ImageError as err:
        return Skipped(task.path, str(err))
    return features.Record(
        image=encoded,
        image_format=options.encoding,
        height=options.image_size,
        width=options.image_size,
        original_height=gray.shape[0],
        original_width=gray.shape[1],
        path=task.path,
        patient_id=task.patient_id,
        view=task.view,
        projection=task.projection,
        states=task.states,
        boxes=tuple((c, *transform.box(x, y, w, h)) for c, x, y, w, h in task.boxes),
        sex=task.sex,
        age=task.age,
    )


@dataclass(frozen=True)
class RecordMaker:
    """``make_record`` bound to a build's image root and storage options: what a worker process runs
    (picklable, so a ``WorkerPool`` sends it to its workers)."""

    root: Path
    options: RecordOptions

    def __call__(self, task: ImageTask) -> features.Record | Skipped:
        return make_record(task, self.root, self.options)
