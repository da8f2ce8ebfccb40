"""The per-image work of a records build: read, decode, resize, encode, one image at a time.

Kept apart from the planning code (``build.py``) so the decoding processes import only what they need
(OpenCV, NumPy, Pillow): a worker is ready in a fraction of a second instead of importing
pandas. Used by the local process pool here and by the Beam runner.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cxr_tf.io import imaging
from cxr_tf.io.paths import UnsafePath, resolve
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
    try:
        gray = imaging.load_gray8(resolve(root, task.path))
        stored, transform = imaging.resize(gray, options.image_size, options.resize)
        encoded = imaging.encode(stored, options.encoding)
    except (UnsafePath, imaging.ImageError) as err:
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


class Decoder:
    """Runs ``make_record`` over tasks, in order, in-process or on a process pool.

    The pool forks its workers from a fork server that has imported only this module: forking the
    calling process could copy TensorFlow's threads (and deadlock), and spawning would re-import the
    caller's ``__main__`` (pandas, maybe TensorFlow) in every worker. Workers need no TensorFlow: they
    return ``Record`` objects, which the parent serialises and writes.
    """

    def __init__(self, root: Path, options: RecordOptions, workers: int) -> None:
        self.root, self.options, self.workers = root, options, workers
        self.pool = None

    def __enter__(self) -> "Decoder":
        if self.workers > 1:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self.pool = context.Pool(self.workers, initializer=_init_worker,
                                     initargs=(self.root, self.options))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is None:
            return
        if exc[0] is None:
            self.pool.close()
        else:  # interrupted: do not wait for queued images
            self.pool.terminate()
        self.pool.join()

    def __call__(self, tasks: list[ImageTask]) -> Iterator[features.Record | Skipped]:
        if self.pool is None:
            return (make_record(t, self.root, self.options) for t in tasks)
        # Small chunks keep both workers busy to the end of a shard; ordered results keep the
        # shard content independent of timing.
        return self.pool.imap(_worker_make_record, tasks, chunksize=4)


_WORKER_ARGS: tuple[Path, RecordOptions] | None = None


def _init_worker(root: Path, options: RecordOptions) -> None:
    global _WORKER_ARGS  # per-process constant set once by the pool initializer
    _WORKER_ARGS = (root, options)


def _worker_make_record(task: ImageTask) -> features.Record | Skipped:
    assert _WORKER_ARGS is not None
    return make_record(task, *_WORKER_ARGS)


