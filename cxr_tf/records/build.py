"""Manifest (with a ``split`` column) -> sharded TFRecords, ``dataset.json``, ``manifest.csv``, ``skipped.csv``.

The work is planned up front: rows of each split are put in a seeded order and cut into shards whose
count follows from the row count and ``shard_mb``, so the same arguments always give the same shards.
Each shard is written under a ``.partial`` name and renamed when complete; a small sidecar in
``.build/`` then marks it done. A killed build re-run with the same arguments reuses every finished
shard and ends with the same content; ``dataset.json`` is written last, so a directory without it is
never mistaken for a finished build. Output paths go through ``tf.io.gfile`` (``gs://``, ``s3://``).

Decoding, resizing and encoding run per image in ``encode.make_record`` (the one per-image function,
used by the process pool here and by the Beam runner); bad images become rows of ``skipped.csv``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cxr_tf import reporting
from cxr_tf.datasets import manifest as mf
from cxr_tf.errors import DataError, UserError
from cxr_tf.io.workers import WorkerPool
from cxr_tf.records import encode, features, info, output
from cxr_tf.records.encode import ImageTask, RecordOptions

log = reporting.logger("records")
# Bytes per stored pixel, measured on NIH-like 8-bit radiographs (PNG level 1, JPEG q95), used only
# to pick a shard count near --shard-mb before anything is encoded.
BYTES_PER_PIXEL = {"png": 0.6, "jpeg": 0.15}


def tasks_from_manifest(manifest: mf.Manifest) -> list[ImageTask]:
    """One ``ImageTask`` per manifest row, in row order."""
    frame = manifest.frame
    index = {name: i for i, name in enumerate(manifest.classes)}
    states = manifest.states().to_numpy()
    boxes = [_parse_boxes(raw, index) for raw in frame[mf.BOXES].astype(str)]
    columns = zip(frame[mf.PATH], frame[mf.PATIENT], frame[mf.VIEW], frame[mf.PROJECTION])
    # Manifests made before sex and age were recorded have neither column.
    sexes = frame[mf.SEX].astype(str) if mf.SEX in frame else [""] * len(frame)
    ages = pd.to_numeric(frame[mf.AGE], errors="coerce") if mf.AGE in frame else [np.nan] * len(frame)
    return [
        ImageTask(str(p), str(pid), str(v), str(pr), tuple(int(s) for s in row), box, sex,
                  features.UNKNOWN_AGE if pd.isna(age) else int(age))
        for (p, pid, v, pr), row, box, sex, age in zip(columns, states, boxes, sexes, ages)
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
    """A digest of everything that decides the records' content (not workers or strictness).

    The image root is part of it: the same label rows over another folder are other images (a re-run
    with a corrected ``--images`` must not resume the first run's shards).
    """
    digest = hashlib.sha256()
    root = str(manifest.image_root.resolve()) if manifest.image_root is not None else None
    digest.update(json.dumps({"dataset": manifest.dataset, "classes": manifest.classes, "image_root": root,
                              "options": dataclasses.asdict(options)}, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(manifest.frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class BuildPlan:
    """What a build will write: its identity, one task per manifest row and the shards' rows.

    ``shards`` maps each split to ``(shard file name, row positions)`` in shard order.
    """

    key: str
    tasks: list[ImageTask]
    shards: dict[str, list[tuple[str, np.ndarray]]]

    def todo(self, out: str) -> list[tuple[str, list[ImageTask]]]:
        """Shards without a finished sidecar in ``out``, with their tasks in record order."""
        return [(name, [self.tasks[r] for r in rows])
                for pieces in self.shards.values() for name, rows in pieces
                if output.read_sidecar(out, name) is None]

    def entries(self, out: str) -> dict[str, list[dict]]:
        """Sidecar entries of every shard, per split (all shards must be finished)."""
        return {split: [output.read_sidecar(out, name) for name, _ in pieces]
                for split, pieces in self.shards.items()}


def plan_build(manifest: mf.Manifest, options: RecordOptions, *, strict: bool) -> BuildPlan:
    """Check ``manifest`` and plan its records (no files touched)."""
    if manifest.image_root is None:
        raise UserError("building records needs the images: pass --images DIR")
    if mf.SPLIT not in manifest.frame.columns:
        raise ValueError("manifest has no split column; assign splits first")
    if strict and len(manifest.skipped):
        first = manifest.skipped.iloc[0]
        raise DataError(f"{first['path']}: {first['reason']} (--strict)")
    if manifest.frame.empty:
        rejected = (f"; all {len(manifest.skipped)} were rejected, the first: {manifest.skipped.iloc[0]['path']}: "
                    f"{manifest.skipped.iloc[0]['reason']}" if len(manifest.skipped) else "")
        raise DataError(f"nothing to build: the --labels of --dataset {manifest.dataset} give no image row{rejected}")
    shards = {split: [(shard_name(split, i, len(pieces)), rows) for i, rows in enumerate(pieces)]
              for split, pieces in plan_shards(manifest.frame, options).items()}
    return BuildPlan(fingerprint(manifest, options), tasks_from_manifest(manifest), shards)


def build_records(
    manifest: mf.Manifest,
    out: str,
    options: RecordOptions,
    *,
    workers: int = 1,
    strict: bool = False,
    overwrite: bool = False,
    build_args: dict[str, Any] | None = None,
) -> info.RecordsInfo:
    """Write the records of ``manifest`` (which must have a ``split`` column) to ``out``.

    Args:
        manifest: rows to store; ``image_root`` must be set.
        out: output directory, local or a ``tf.io.gfile`` URL.
        options: storage options; part of the build's identity.
        workers: decoding processes (1 = in this process).
        strict: raise ``DataError`` at the first unusable row instead of skipping it.
        overwrite: delete a previous build with other arguments in ``out`` instead of refusing (only
            the files a build writes; a directory holding anything else is refused).
        build_args: the resolved command config, stored in dataset.json.

    Returns:
        The written ``dataset.json``.
    """
    plan = plan_build(manifest, options, strict=strict)
    with output.claim(out, manifest.image_root):
        done = output.prepare(out, plan.key, overwrite)
        if done is not None:
            log.info("%s already holds this build; nothing to do", out)
            return done
        make_record = encode.RecordMaker(manifest.image_root, options)
        with WorkerPool(workers, preload=encode.__name__) as pool:
            for name, tasks in plan.todo(out):
                # Small chunks keep both workers busy to the end of a shard; ordered results keep the
                # shard content independent of timing.
                results = reporting.progress(pool.map(make_record, tasks, chunksize=4), total=len(tasks),
                                             desc=name, unit="img")
                output.write_shard(out, name, results, strict)
        return output.finish(out, manifest, dataclasses.asdict(options), plan.key, plan.entries(out),
                             build_args or {})
