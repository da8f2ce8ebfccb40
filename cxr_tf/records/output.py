"""What a build leaves in ``--out``: shards, their sidecars, ``dataset.json``, ``manifest.csv``, ``skipped.csv``
and the TFDS metadata (``dataset_info.json``, ``features.json``: ``tfds.builder_from_directory(out)`` works).

Shared by every runner (the local process pool and Beam), so both write byte-identical shards and the
same ``dataset.json``. Every file is written under a ``.partial`` name and renamed when complete; a
shard's sidecar in ``.build/`` is written after the shard and marks it done; ``dataset.json`` is
written last and marks the build done. Paths go through ``tf.io.gfile`` (``gs://``, ``s3://``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from cxr_tf import __version__, reporting
from cxr_tf.datasets import manifest as mf
from cxr_tf.errors import DataError, UserError
from cxr_tf.io import atomic, claims
from cxr_tf.records import features, info, tfds_metadata
from cxr_tf.records.encode import Skipped

log = reporting.logger("records")

BUILD_DIR = ".build"
FINGERPRINT = "fingerprint.json"
LOCK = ".build.lock"
# Everything a build writes in --out besides .build/ and the lock; nothing else is ever deleted.
_BUILD_FILE = re.compile(r"([a-z]+-\d{5}-of-\d{5}\.tfrecord|dataset\.json|manifest\.csv|skipped\.csv"
                         r"|dataset_info\.json|features\.json)(\.partial)?")  # the last two: TFDS metadata
_SIDECAR = re.compile(r".+\.json(\.partial)?")


def prepare(out: str, key: str, overwrite: bool) -> info.RecordsInfo | None:
    """Make ``out`` ready for the build ``key`` (call it under ``claim(out, ...)``).

    Returns the existing dataset.json when this exact build is already complete (adding its TFDS
    metadata if it predates them), ``None`` when the build is to start or resume. A directory holding
    anything else is refused unless ``overwrite``; ``overwrite`` deletes only what a build writes
    (``is_build_file``) and refuses a directory that holds anything else, naming it (``io.claims.claim``).
    """
    import tensorflow as tf

    if claims.claim(out, {"fingerprint": key}, OWNER, overwrite):
        if not tf.io.gfile.exists(info.join(out, info.FILENAME)):
            return None
        content = info.RecordsInfo.load(out)
        if not all(tf.io.gfile.exists(info.join(out, name)) for name in tfds_metadata.TFDS_FILES):
            tfds_metadata.write(out, content)  # a build finished before build_records wrote them
        return content
    tf.io.gfile.makedirs(info.join(out, BUILD_DIR))
    atomic.write_text(info.join(out, OWNER.config_file), json.dumps({"fingerprint": key}))
    return None


def is_build_file(out: str, name: str) -> bool:
    """True for an entry of ``out`` that a build writes: shards, dataset.json, manifest.csv, skipped.csv,
    the TFDS metadata (or their ``.partial`` forms), the lock and ``.build/`` holding only sidecars."""
    import tensorflow as tf

    if name == BUILD_DIR:
        inside = [entry.rstrip("/") for entry in tf.io.gfile.listdir(info.join(out, name))]
        return all(_SIDECAR.fullmatch(entry) for entry in inside)
    return name == LOCK or bool(_BUILD_FILE.fullmatch(name))


# A build's --out is its own when .build/fingerprint.json holds the build's key (``build.plan_build``).
OWNER = claims.Owner(command="build_records", config_file=f"{BUILD_DIR}/{FINGERPRINT}", writes=is_build_file,
                     lock=LOCK)


@contextlib.contextmanager
def claim(out: str, image_root: Path | None) -> Iterator[None]:
    """Hold ``out`` for one build (``io.claims.hold``: a second build into it fails at once).

    Refuses an ``out`` equal to or inside ``image_root`` (an overwrite there would reach the images).

    Raises:
        UserError: ``out`` inside the images, or another build holds the lock.
    """
    if image_root is not None and "://" not in out:
        target, root = Path(out).resolve(), Path(image_root).resolve()
        if target == root or root in target.parents:
            raise UserError(f"--out {out} is inside --images {image_root}; write the records elsewhere")
    with claims.hold(out, OWNER):
        yield


def write_shard(out: str, name: str, results: Iterable[features.Record | Skipped], strict: bool) -> dict:
    """Write one shard from per-image results in order; returns its sidecar entry.

    ``Skipped`` results are listed in the sidecar, or raise ``DataError`` under ``strict``.
    """
    import tensorflow as tf

    final = info.join(out, name)
    skipped: list[list[str]] = []
    records = 0
    with atomic.replacing(final) as partial, atomic.writing(partial), tf.io.TFRecordWriter(partial) as writer:
        for result in results:
            if isinstance(result, Skipped):
                if strict:
                    raise DataError(f"{result.path}: {result.reason} (--strict)")
                skipped.append([result.path, result.reason])
                continue
            writer.write(features.serialize(result))
            records += 1
    entry = {"file": name, "records": records, "sha256": _sha256(final), "skipped": skipped}
    atomic.write_text(_sidecar_path(out, name), json.dumps(entry))
    log.info("%s: %d records, %d skipped", name, records, len(skipped))
    return entry


def read_sidecar(out: str, name: str) -> dict | None:
    """The sidecar entry of a finished shard, or ``None`` when the shard still has to be written."""
    import tensorflow as tf

    path = _sidecar_path(out, name)
    if not (tf.io.gfile.exists(path) and tf.io.gfile.exists(info.join(out, name))):
        return None
    with tf.io.gfile.GFile(path, "r") as fh:
        return json.load(fh)


def finish(out: str, manifest: mf.Manifest, options: dict[str, Any], key: str,
           entries: dict[str, list[dict]], build_args: dict[str, Any]) -> info.RecordsInfo:
    """Write manifest.csv, skipped.csv, the TFDS metadata and, last, dataset.json; returns dataset.json's content.

    Args:
        entries: split -> the sidecar entries of its shards, in shard order.
        options: the storage options (``image_size``, ``resize``, ``encoding``...).
    """
    built_skips = [(p, r) for shards in entries.values() for e in shards for p, r in e["skipped"]]
    bad = pd.concat([manifest.skipped[list(mf.SKIPPED_COLUMNS)],
                     pd.DataFrame(built_skips, columns=list(mf.SKIPPED_COLUMNS))], ignore_index=True)
    bad = bad.sort_values(["path", "reason"], kind="stable").reset_index(drop=True)
    kept = manifest.frame[~manifest.frame[mf.PATH].isin({p for p, _ in built_skips})]
    splits = {}
    for split, shards in entries.items():
        rows = kept[kept[mf.SPLIT] == split]
        splits[split] = info.Split(
            examples=int(sum(e["records"] for e in shards)),
            patients=int(rows[mf.PATIENT].nunique()),
            counts=mf.state_counts(rows, manifest.classes),
            shards=tuple(info.Shard(e["file"], e["records"], _size(info.join(out, e["file"])), e["sha256"])
                         for e in shards),
        )
    by_reason = bad["reason"].map(mf.reason_category).value_counts().sort_index()
    content = info.RecordsInfo(
        dataset=manifest.dataset, task=manifest.task, classes=tuple(manifest.classes),
        label_tree=dict(manifest.label_tree), image_size=options["image_size"], resize=options["resize"],
        encoding=options["encoding"], splits=splits,
        skipped=info.SkippedRows(int(len(bad)), {str(k): int(v) for k, v in by_reason.items()}),
        build_args=build_args, fingerprint=key, cxr_tf_version=__version__,
    )
    if not any(split.examples for split in splits.values()):
        reasons = ", ".join(f"{n} {reason}" for reason, n in content.skipped.by_reason.items())
        raise DataError(f"no image could be stored: all {len(bad)} rows were skipped ({reasons}); {out} is not "
                        "a finished build (check --images and the label file)")
    atomic.write_text(info.join(out, "manifest.csv"), _csv(kept))
    atomic.write_text(info.join(out, "skipped.csv"), _csv(bad))
    tfds_metadata.write(out, content)
    content.save(out)  # last: marks completion
    return content


def read_records(paths: Iterable[str], num_classes: int) -> Iterator[dict[str, Any]]:
    """Decode records back to numpy (tests, inspection): one dict of features per record."""
    import tensorflow as tf

    spec = features.feature_spec(num_classes)
    for raw in tf.data.TFRecordDataset(list(paths)):
        example = tf.io.parse_single_example(raw, spec)
        yield {k: (tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v).numpy()
               for k, v in example.items()}


def _sidecar_path(out: str, name: str) -> str:
    return info.join(info.join(out, BUILD_DIR), name + ".json")


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def _size(path: str) -> int:
    import tensorflow as tf

    return int(tf.io.gfile.stat(path).length)


def _sha256(path: str) -> str:
    import tensorflow as tf

    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
