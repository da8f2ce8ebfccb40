"""Manifest (with a ``split`` column) -> sharded TFRecords, ``dataset.json``, ``manifest.csv``, ``skipped.csv``.

The work is planned up front: rows of each split are put in a seeded order and cut into shards whose
count follows from the row count and ``shard_mb``, so the same arguments always give the same shards.
Each shard is written under a ``.partial`` name and renamed when complete; a small sidecar in
``.build/`` then marks it done. A killed build re-run with the same arguments reuses every finished
shard and ends with the same content; ``dataset.json`` is written last, so a directory without it is
never mistaken for a finished build. Output paths go through ``tf.io.gfile`` (``gs://``, ``s3://``).

Decoding, resizing and encoding run per image in ``make_record`` (the one per-image function, used by
the process pool here and by the Beam runner); bad images become rows of ``skipped.csv``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from cxr_tf import __version__, imaging, labels, reporting
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.paths import UnsafePath, resolve
from cxr_tf.errors import DataError, UserError
from cxr_tf.records import features, info

log = reporting.logger("records")

BUILD_DIR = ".build"
FINGERPRINT = "fingerprint.json"
PARTIAL = ".partial"
# Bytes per stored pixel, measured on NIH-like 8-bit radiographs (PNG level 1, JPEG q95), used only
# to pick a shard count near --shard-mb before anything is encoded.
BYTES_PER_PIXEL = {"png": 0.6, "jpeg": 0.15}


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
    resize: imaging.ResizeMode = "pad"
    encoding: imaging.Encoding = "png"
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


@dataclass(frozen=True)
class Skipped:
    """A row that produced no record, with the reason written to skipped.csv."""

    path: str
    reason: str


def make_record(task: ImageTask, root: Path, options: RecordOptions) -> features.Record | Skipped:
    """Read, decode, resize and encode one image; a bad image becomes ``Skipped``, never an exception."""
    try:
        file = resolve(root, task.path)
        data = file.read_bytes()
    except UnsafePath as err:
        return Skipped(task.path, str(err))
    except FileNotFoundError:
        return Skipped(task.path, "missing file")
    except IsADirectoryError:
        return Skipped(task.path, "not a file")
    except OSError as err:
        return Skipped(task.path, f"unreadable file ({err.strerror})")
    try:
        gray = imaging.decode_gray8(data, task.path)
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
    )


def tasks_from_manifest(manifest: mf.Manifest) -> list[ImageTask]:
    """One ``ImageTask`` per manifest row, in row order."""
    frame = manifest.frame
    index = {name: i for i, name in enumerate(manifest.classes)}
    states = manifest.states().to_numpy()
    boxes = [_parse_boxes(raw, index) for raw in frame[mf.BOXES].astype(str)]
    columns = zip(frame[mf.PATH], frame[mf.PATIENT], frame[mf.VIEW], frame[mf.PROJECTION])
    return [
        ImageTask(str(p), str(pid), str(v), str(pr), tuple(int(s) for s in row), box)
        for (p, pid, v, pr), row, box in zip(columns, states, boxes)
    ]


def _parse_boxes(raw: str, index: dict[str, int]) -> tuple:
    if raw in ("", "[]", "nan"):
        return ()
    return tuple((index[name], float(x), float(y), float(w), float(h))
                 for name, x, y, w, h in json.loads(raw) if name in index)


def plan_shards(frame: pd.DataFrame, options: RecordOptions) -> dict[str, list[np.ndarray]]:
    """Row positions of each shard, per split: a seeded order cut into near-``shard_mb`` pieces."""
    per_image = BYTES_PER_PIXEL[options.encoding] * options.image_size**2 + 256
    rng = np.random.default_rng(options.seed)
    plan = {}
    for split in ("train", "val", "test"):
        rows = np.flatnonzero((frame[mf.SPLIT] == split).to_numpy())
        if len(rows) == 0:
            continue
        rows = rows[rng.permutation(len(rows))]
        count = min(len(rows), max(1, math.ceil(len(rows) * per_image / (options.shard_mb * 1e6))))
        plan[split] = np.array_split(rows, count)
    return plan


def shard_name(split: str, i: int, n: int) -> str:
    return f"{split}-{i:05d}-of-{n:05d}.tfrecord"


def fingerprint(manifest: mf.Manifest, options: RecordOptions) -> str:
    """A digest of everything that decides the records' content (not workers or strictness)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"dataset": manifest.dataset, "classes": manifest.classes,
                              "options": dataclasses.asdict(options)}, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(manifest.frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def build_records(
    manifest: mf.Manifest,
    out: str,
    options: RecordOptions,
    *,
    workers: int = 1,
    strict: bool = False,
    overwrite: bool = False,
    build_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the records of ``manifest`` (which must have a ``split`` column) to ``out``.

    Args:
        manifest: rows to store; ``image_root`` must be set.
        out: output directory, local or a ``tf.io.gfile`` URL.
        options: storage options; part of the build's identity.
        workers: decoding processes (1 = in this process).
        strict: raise ``DataError`` at the first unusable row instead of skipping it.
        overwrite: delete a previous build with other arguments in ``out`` instead of refusing.
        build_args: the resolved command config, stored in dataset.json.

    Returns:
        The content of the written ``dataset.json``.
    """
    import tensorflow as tf

    if manifest.image_root is None:
        raise UserError("building records needs the images: pass --images DIR")
    if mf.SPLIT not in manifest.frame.columns:
        raise ValueError("manifest has no split column; assign splits first")
    if strict and len(manifest.skipped):
        first = manifest.skipped.iloc[0]
        raise DataError(f"{first['path']}: {first['reason']} (--strict)")

    key = fingerprint(manifest, options)
    done = _prepare_out(tf, out, key, overwrite)
    if done is not None:
        log.info("%s already holds this build; nothing to do", out)
        return done

    tasks = tasks_from_manifest(manifest)
    plan = plan_shards(manifest.frame, options)
    shards: dict[str, list[dict]] = {}
    skipped: list[Skipped] = []
    with _Decoder(manifest.image_root, options, workers) as decode:
        for split, pieces in plan.items():
            shards[split] = []
            for i, rows in enumerate(pieces):
                name = shard_name(split, i, len(pieces))
                entry = _read_sidecar(tf, out, name)
                if entry is None:
                    entry = _write_shard(tf, out, name, [tasks[r] for r in rows], decode, strict)
                shards[split].append({k: entry[k] for k in ("file", "records", "sha256")})
                skipped.extend(Skipped(p, r) for p, r in entry["skipped"])

    return _finish(tf, out, manifest, options, shards, skipped, key, build_args or {})


class _Decoder:
    """Runs ``make_record`` over tasks, in order, in-process or on a spawn-context process pool.

    Spawn, not fork: forking a process that has initialised TensorFlow can deadlock, and workers
    need no TensorFlow (they return ``Record`` objects; the parent serialises and writes).
    """

    def __init__(self, root: Path, options: RecordOptions, workers: int) -> None:
        self.root, self.options, self.workers = root, options, workers
        self.pool = None

    def __enter__(self) -> "_Decoder":
        if self.workers > 1:
            context = multiprocessing.get_context("spawn")
            self.pool = context.Pool(self.workers, initializer=_init_worker,
                                     initargs=(self.root, self.options))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate() if exc[0] else self.pool.close()
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


def _write_shard(tf: Any, out: str, name: str, tasks: list[ImageTask], decode: _Decoder,
                 strict: bool) -> dict:
    final, partial = info.join(out, name), info.join(out, name + PARTIAL)
    skipped: list[list[str]] = []
    records = 0
    with tf.io.TFRecordWriter(partial) as writer:
        for result in reporting.progress(decode(tasks), total=len(tasks), desc=name, unit="img"):
            if isinstance(result, Skipped):
                if strict:
                    raise DataError(f"{result.path}: {result.reason} (--strict)")
                skipped.append([result.path, result.reason])
                continue
            writer.write(features.serialize(result))
            records += 1
    tf.io.gfile.rename(partial, final, overwrite=True)
    entry = {"file": name, "records": records, "sha256": _sha256(tf, final), "skipped": skipped}
    _atomic_write(tf, info.join(info.join(out, BUILD_DIR), name + ".json"), json.dumps(entry))
    log.info("%s: %d records, %d skipped", name, records, len(skipped))
    return entry


def _read_sidecar(tf: Any, out: str, name: str) -> dict | None:
    path = info.join(info.join(out, BUILD_DIR), name + ".json")
    if not (tf.io.gfile.exists(path) and tf.io.gfile.exists(info.join(out, name))):
        return None
    with tf.io.gfile.GFile(path, "r") as fh:
        return json.load(fh)


def _prepare_out(tf: Any, out: str, key: str, overwrite: bool) -> dict | None:
    """Make ``out`` ready; returns the existing dataset.json when this exact build is complete."""
    stamp = info.join(info.join(out, BUILD_DIR), FINGERPRINT)
    if tf.io.gfile.exists(out) and tf.io.gfile.listdir(out):
        previous = None
        if tf.io.gfile.exists(stamp):
            with tf.io.gfile.GFile(stamp, "r") as fh:
                previous = json.load(fh)["fingerprint"]
        if previous == key:
            if tf.io.gfile.exists(info.join(out, info.FILENAME)):
                return info.load(out)
            return None  # resume
        if not overwrite:
            what = "records built with other arguments" if previous else "files that are not a cxr_tf build"
            raise UserError(f"--out {out} holds {what}; pass --overwrite to replace them or choose another --out")
        tf.io.gfile.rmtree(out)
    tf.io.gfile.makedirs(info.join(out, BUILD_DIR))
    _atomic_write(tf, stamp, json.dumps({"fingerprint": key}))
    return None


def _finish(tf: Any, out: str, manifest: mf.Manifest, options: RecordOptions,
            shards: dict[str, list[dict]], skipped: list[Skipped], key: str,
            build_args: dict[str, Any]) -> dict[str, Any]:
    bad = pd.DataFrame([dataclasses.asdict(s) for s in skipped], columns=list(mf.SKIPPED_COLUMNS))
    bad = pd.concat([manifest.skipped[list(mf.SKIPPED_COLUMNS)], bad], ignore_index=True)
    bad = bad.sort_values(["path", "reason"], kind="stable").reset_index(drop=True)
    kept = manifest.frame[~manifest.frame[mf.PATH].isin(set(s.path for s in skipped))]
    splits = {}
    for split, entries in shards.items():
        rows = kept[kept[mf.SPLIT] == split]
        splits[split] = {
            "examples": int(sum(e["records"] for e in entries)),
            "patients": int(rows[mf.PATIENT].nunique()),
            "counts": mf.state_counts(rows, manifest.classes),
            "shards": entries,
        }
    content = {
        "format": info.FORMAT,
        "dataset": manifest.dataset,
        "task": manifest.task,
        "classes": list(manifest.classes),
        "label_tree": dict(manifest.label_tree),
        "state_codes": {name: code for code, name in labels.STATE_NAMES.items()},
        "image_size": options.image_size,
        "resize": options.resize,
        "encoding": options.encoding,
        "splits": splits,
        "skipped": {"total": int(len(bad)),
                    "by_reason": {str(k): int(v) for k, v in bad["reason"].value_counts().sort_index().items()}},
        "build_args": build_args,
        "fingerprint": key,
        "cxr_tf_version": __version__,
    }
    _atomic_write(tf, info.join(out, "manifest.csv"), _csv(kept))
    _atomic_write(tf, info.join(out, "skipped.csv"), _csv(bad))
    _atomic_write(tf, info.join(out, info.FILENAME), json.dumps(content, indent=2))  # last: marks completion
    return content


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def _atomic_write(tf: Any, path: str, text: str) -> None:
    with tf.io.gfile.GFile(path + PARTIAL, "w") as fh:
        fh.write(text)
    tf.io.gfile.rename(path + PARTIAL, path, overwrite=True)


def _sha256(tf: Any, path: str) -> str:
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_records(paths: Iterable[str], num_classes: int) -> Iterator[dict[str, Any]]:
    """Decode records back to numpy (tests, inspection): one dict of features per record."""
    import tensorflow as tf

    spec = features.feature_spec(num_classes)
    for raw in tf.data.TFRecordDataset(list(paths)):
        example = tf.io.parse_single_example(raw, spec)
        yield {k: (tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v).numpy()
               for k, v in example.items()}
