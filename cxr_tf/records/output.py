"""What a build leaves in ``--out``: shards, their sidecars, ``dataset.json``, ``manifest.csv``, ``skipped.csv``
and the TFDS metadata (``dataset_info.json``, ``features.json``: ``tfds.builder_from_directory(out)`` works).

Shared by every runner (the local process pool and Beam), so both write byte-identical shards and the
same ``dataset.json``. Every file is written under a ``.partial`` name and renamed when complete; a
shard's sidecar in ``.build/`` is written after the shard and marks it done; ``dataset.json`` is
written last and marks the build done. Paths go through ``tf.io.gfile`` (``gs://``, ``s3://``).
"""

from __future__ import annotations

import contextlib
import fcntl
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
from cxr_tf.records import features, info, tfds_metadata
from cxr_tf.records.encode import Skipped

log = reporting.logger("records")

BUILD_DIR = ".build"
FINGERPRINT = "fingerprint.json"
PARTIAL = ".partial"
LOCK = ".build.lock"
# Everything a build writes in --out besides .build/ and the lock; nothing else is ever deleted.
_BUILD_FILE = re.compile(r"([a-z]+-\d{5}-of-\d{5}\.tfrecord|dataset\.json|manifest\.csv|skipped\.csv"
                         r"|dataset_info\.json|features\.json)(\.partial)?")  # the last two: TFDS metadata
_SIDECAR = re.compile(r".+\.json(\.partial)?")


def require_directory(out: str, flag: str = "--out") -> None:
    """Raise ``UserError`` when local ``out``, or its nearest existing parent, is not a directory (a file
    there would fail later with an ``OSError`` traceback). URLs (``gs://``...) are left to their store."""
    if "://" in out:
        return
    for path in (Path(out), *Path(out).parents):
        if path.exists():
            if not path.is_dir():
                raise UserError(f"{flag} {out}: {path} is a file, not a directory; choose another {flag}")
            return


def prepare(out: str, key: str, overwrite: bool) -> info.RecordsInfo | None:
    """Make ``out`` ready for the build ``key`` (call it under ``claim(out, ...)``).

    Returns the existing dataset.json when this exact build is already complete (adding its TFDS
    metadata if it predates them), ``None`` when the build is to start or resume. A directory holding
    anything else is refused unless ``overwrite``; ``overwrite`` deletes only what a build writes
    (``is_build_file``) and refuses a directory that holds anything else, naming it.
    """
    import tensorflow as tf

    require_directory(out)
    stamp = info.join(info.join(out, BUILD_DIR), FINGERPRINT)
    present = [name.rstrip("/") for name in tf.io.gfile.listdir(out)] if tf.io.gfile.isdir(out) else []
    present = sorted(name for name in present if name != LOCK)
    if present:
        previous = None
        if tf.io.gfile.exists(stamp):
            with tf.io.gfile.GFile(stamp, "r") as fh:
                previous = json.load(fh)["fingerprint"]
        if previous == key:
            if not tf.io.gfile.exists(info.join(out, info.FILENAME)):
                return None
            content = info.RecordsInfo.load(out)
            if not all(tf.io.gfile.exists(info.join(out, name)) for name in tfds_metadata.TFDS_FILES):
                tfds_metadata.write(out, content)  # a build finished before build_records wrote them
            return content
        foreign = [name for name in present if not is_build_file(out, name)]
        if foreign:
            raise UserError(f"--out {out} holds {foreign[0]!r}, which build_records did not write; "
                            "move it away or choose another --out (--overwrite replaces only an earlier build)")
        if not overwrite:
            raise UserError(f"--out {out} holds records built with other arguments; pass --overwrite to "
                            "replace them or choose another --out")
        for name in present:
            path = info.join(out, name)
            (tf.io.gfile.rmtree if tf.io.gfile.isdir(path) else tf.io.gfile.remove)(path)
    tf.io.gfile.makedirs(info.join(out, BUILD_DIR))
    atomic_write(stamp, json.dumps({"fingerprint": key}))
    return None


def is_build_file(out: str, name: str) -> bool:
    """True for an entry of ``out`` that a build writes: shards, dataset.json, manifest.csv, skipped.csv,
    the TFDS metadata (or their ``.partial`` forms), the lock and ``.build/`` holding only sidecars."""
    import tensorflow as tf

    if name == BUILD_DIR:
        inside = [entry.rstrip("/") for entry in tf.io.gfile.listdir(info.join(out, name))]
        return all(_SIDECAR.fullmatch(entry) for entry in inside)
    return name == LOCK or bool(_BUILD_FILE.fullmatch(name))


@contextlib.contextmanager
def claim(out: str, image_root: Path | None) -> Iterator[None]:
    """Hold ``out`` for one build.

    Refuses an ``out`` equal to or inside ``image_root`` (an overwrite there would reach the images),
    and locks a local ``out`` (``fcntl.flock`` on ``.build.lock``, released by the kernel even when
    the build is killed) so that a second build into it fails at once instead of interleaving its
    shards and sidecars with the first's. URLs (``gs://``) are not locked.

    Raises:
        UserError: ``out`` inside the images, or another build holds the lock.
    """
    if "://" in out:
        yield
        return
    target = Path(out).resolve()
    if image_root is not None:
        root = Path(image_root).resolve()
        if target == root or root in target.parents:
            raise UserError(f"--out {out} is inside --images {image_root}; write the records elsewhere")
    require_directory(out)
    target.mkdir(parents=True, exist_ok=True)
    with open(target / LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"--out {out} is being written by another build (it holds {LOCK}); wait for it "
                            "to finish or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_shard(out: str, name: str, results: Iterable[features.Record | Skipped], strict: bool) -> dict:
    """Write one shard from per-image results in order; returns its sidecar entry.

    ``Skipped`` results are listed in the sidecar, or raise ``DataError`` under ``strict``.
    """
    import tensorflow as tf

    final, partial = info.join(out, name), info.join(out, name + PARTIAL)
    skipped: list[list[str]] = []
    records = 0
    with _writing(partial), tf.io.TFRecordWriter(partial) as writer:
        for result in results:
            if isinstance(result, Skipped):
                if strict:
                    raise DataError(f"{result.path}: {result.reason} (--strict)")
                skipped.append([result.path, result.reason])
                continue
            writer.write(features.serialize(result))
            records += 1
    tf.io.gfile.rename(partial, final, overwrite=True)
    entry = {"file": name, "records": records, "sha256": _sha256(final), "skipped": skipped}
    atomic_write(_sidecar_path(out, name), json.dumps(entry))
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
    atomic_write(info.join(out, "manifest.csv"), _csv(kept))
    atomic_write(info.join(out, "skipped.csv"), _csv(bad))
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


def atomic_write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    import tensorflow as tf

    with _writing(path + PARTIAL), tf.io.gfile.GFile(path + PARTIAL, "w") as fh:
        fh.write(text)
    tf.io.gfile.rename(path + PARTIAL, path, overwrite=True)


@contextlib.contextmanager
def _writing(path: str) -> Iterator[None]:
    """Turn a failed write (disk full, ``ulimit -f`` reached) into one line; what is finished stays."""
    import tensorflow as tf

    try:
        yield
    except (OSError, tf.errors.OpError) as err:
        reason = getattr(err, "message", None) or getattr(err, "strerror", None) or str(err)
        raise DataError(f"{path}: cannot write ({reason.rsplit('; ', 1)[-1]}); finished shards are kept: free disk "
                        "space or raise the file size limit (ulimit -f) and re-run the same command") from None


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
