"""What a build leaves in ``--out``: shards, their sidecars, ``dataset.json``, ``manifest.csv``, ``skipped.csv``.

Shared by every runner (the local process pool and Beam), so both write byte-identical shards and the
same ``dataset.json``. Every file is written under a ``.partial`` name and renamed when complete; a
shard's sidecar in ``.build/`` is written after the shard and marks it done; ``dataset.json`` is
written last and marks the build done. Paths go through ``tf.io.gfile`` (``gs://``, ``s3://``).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from cxr_tf import __version__, labels, reporting
from cxr_tf.datasets import manifest as mf
from cxr_tf.errors import DataError, UserError
from cxr_tf.records import features, info
from cxr_tf.records.encode import Skipped

log = reporting.logger("records")

BUILD_DIR = ".build"
FINGERPRINT = "fingerprint.json"
PARTIAL = ".partial"


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


def prepare(out: str, key: str, overwrite: bool) -> dict | None:
    """Make ``out`` ready for the build ``key``.

    Returns the existing dataset.json when this exact build is already complete, ``None`` when the
    build is to start or resume. A directory holding anything else is refused unless ``overwrite``.
    """
    import tensorflow as tf

    require_directory(out)
    stamp = info.join(info.join(out, BUILD_DIR), FINGERPRINT)
    if tf.io.gfile.exists(out) and tf.io.gfile.listdir(out):
        previous = None
        if tf.io.gfile.exists(stamp):
            with tf.io.gfile.GFile(stamp, "r") as fh:
                previous = json.load(fh)["fingerprint"]
        if previous == key:
            return info.load(out) if tf.io.gfile.exists(info.join(out, info.FILENAME)) else None
        if not overwrite:
            what = "records built with other arguments" if previous else "files that are not a cxr_tf build"
            raise UserError(f"--out {out} holds {what}; pass --overwrite to replace them or choose another --out")
        tf.io.gfile.rmtree(out)
    tf.io.gfile.makedirs(info.join(out, BUILD_DIR))
    atomic_write(stamp, json.dumps({"fingerprint": key}))
    return None


def write_shard(out: str, name: str, results: Iterable[features.Record | Skipped], strict: bool) -> dict:
    """Write one shard from per-image results in order; returns its sidecar entry.

    ``Skipped`` results are listed in the sidecar, or raise ``DataError`` under ``strict``.
    """
    import tensorflow as tf

    final, partial = info.join(out, name), info.join(out, name + PARTIAL)
    skipped: list[list[str]] = []
    records = 0
    with tf.io.TFRecordWriter(partial) as writer:
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
           entries: dict[str, list[dict]], build_args: dict[str, Any]) -> dict[str, Any]:
    """Write manifest.csv, skipped.csv and, last, dataset.json; returns dataset.json's content.

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
        splits[split] = {
            "examples": int(sum(e["records"] for e in shards)),
            "patients": int(rows[mf.PATIENT].nunique()),
            "counts": mf.state_counts(rows, manifest.classes),
            "shards": [{k: e[k] for k in ("file", "records", "sha256")} for e in shards],
        }
    content = {
        "format": info.FORMAT,
        "dataset": manifest.dataset,
        "task": manifest.task,
        "classes": list(manifest.classes),
        "label_tree": dict(manifest.label_tree),
        "state_codes": {name: code for code, name in labels.STATE_NAMES.items()},
        "image_size": options["image_size"],
        "resize": options["resize"],
        "encoding": options["encoding"],
        "splits": splits,
        "skipped": {"total": int(len(bad)),
                    "by_reason": {str(k): int(v) for k, v in
                                  bad["reason"].map(mf.reason_category).value_counts().sort_index().items()}},
        "build_args": build_args,
        "fingerprint": key,
        "cxr_tf_version": __version__,
    }
    if not any(split["examples"] for split in splits.values()):
        reasons = ", ".join(f"{n} {reason}" for reason, n in content["skipped"]["by_reason"].items())
        raise DataError(f"no image could be stored: all {len(bad)} rows were skipped ({reasons}); {out} is not "
                        "a finished build (check --images and the label file)")
    atomic_write(info.join(out, "manifest.csv"), _csv(kept))
    atomic_write(info.join(out, "skipped.csv"), _csv(bad))
    atomic_write(info.join(out, info.FILENAME), json.dumps(content, indent=2))  # last: marks completion
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

    with tf.io.gfile.GFile(path + PARTIAL, "w") as fh:
        fh.write(text)
    tf.io.gfile.rename(path + PARTIAL, path, overwrite=True)


def _sidecar_path(out: str, name: str) -> str:
    return info.join(info.join(out, BUILD_DIR), name + ".json")


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def _sha256(path: str) -> str:
    import tensorflow as tf

    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
