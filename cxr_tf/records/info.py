"""``dataset.json``: what a records directory holds, written last by build_records.

Schema (format 1)::

    {
      "format": 1,
      "dataset": "nih",                      # adapter registry name
      "task": "multilabel" | "multiclass",
      "classes": ["Atelectasis", ...],       # order of the labels/state feature
      "label_tree": {"Cardiomegaly": "Enlarged Cardiomediastinum", ...},   # child -> parent
      "state_codes": {"positive": 1, "negative": 0, "uncertain": -1, "blank": -2},
      "image_size": 256, "resize": "pad", "encoding": "png",
      "splits": {
        "train": {
          "examples": 1234, "patients": 321,
          "counts": {"Atelectasis": {"positive": 1, "negative": 2, "uncertain": 0, "blank": 5}, ...},
          "shards": [{"file": "train-00000-of-00002.tfrecord", "records": 617, "bytes": 5123456,
                      "sha256": "..."}, ...]
        }, ...
      },
      "skipped": {"total": 3, "by_reason": {"corrupt image": 2, "missing file": 1}},
      "build_args": {...},                   # the resolved build config
      "cxr_tf_version": "0.1.0",
      "checksum": "..."                      # sha256 of the rest (see content_checksum)
    }

What is read is checked against what was built, cheaply on every read and fully on request: ``load``
refuses a dataset.json edited after the build (a reordered class list would silently permute the
labels' names), ``shard_paths`` refuses a missing shard or one whose size is not the recorded one (a
replaced or truncated shard), and ``verify_shards`` (``--verify``) compares every shard's sha256.
Directories written before these fields existed are read without the checks they need.

Paths go through ``tf.io.gfile`` when TensorFlow is importable so ``gs://``/``s3://`` work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any, Iterator

from cxr_tf.errors import DataError, UserError

FILENAME = "dataset.json"
FORMAT = 1


def join(directory: str, name: str) -> str:
    """``directory/name`` for local paths and URLs alike."""
    return directory.rstrip("/") + "/" + name


def load(records_dir: str) -> dict[str, Any]:
    """Read ``records_dir/dataset.json``; a missing one means an incomplete or foreign directory."""
    import tensorflow as tf

    path = join(str(records_dir), FILENAME)
    if not tf.io.gfile.exists(path):
        raise UserError(
            f"{path} does not exist: {records_dir} is not a finished records directory "
            "(run python -m cxr_tf.build_records, or re-run it to finish an interrupted build)"
        )
    with tf.io.gfile.GFile(path, "r") as fh:
        try:
            info = json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: not readable JSON ({err}); re-run build_records") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise UserError(f"{path}: not a dataset.json of format {FORMAT}; rebuild the records")
    if "checksum" in info and info["checksum"] != content_checksum(info):
        raise UserError(f"{path}: edited after the build (its content no longer matches its checksum, e.g. a "
                        "changed class list); restore it or rebuild the records")
    return info


def content_checksum(info: dict[str, Any]) -> str:
    """sha256 of ``info`` without its ``checksum`` key, as canonical JSON (sorted keys)."""
    body = {key: value for key, value in info.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def split_entry(records_dir: str, info: dict[str, Any], split: str) -> dict[str, Any]:
    """``info["splits"][split]``; a split that is missing or holds no example is a ``UserError`` naming both."""
    entry = info["splits"].get(split)
    if entry is None or not entry["examples"]:
        have = ", ".join(f"{name} ({s['examples']})" for name, s in info["splits"].items()) or "none"
        raise UserError(f"--records {records_dir} has no {'' if entry is None else 'example in its '}split "
                        f"{split!r}; its splits (examples): {have}")
    return entry


def shard_paths(records_dir: str, info: dict[str, Any], split: str) -> list[str]:
    """Full paths of the shards of ``split``, each checked to exist with its recorded size.

    Raises:
        UserError: an unknown or empty split (the ones there are are listed), a missing shard, or a shard whose
            size differs from dataset.json's ``bytes`` (replaced or truncated).
    """
    import tensorflow as tf

    paths = []
    for shard in split_entry(records_dir, info, split)["shards"]:
        path = join(str(records_dir), shard["file"])
        if "bytes" in shard:
            try:
                size = tf.io.gfile.stat(path).length
            except tf.errors.NotFoundError:
                raise UserError(f"{path}: missing shard of {records_dir}; rebuild the records") from None
            if size != shard["bytes"]:
                raise UserError(f"{path}: {size} bytes where dataset.json records {shard['bytes']}; the shard was "
                                "replaced or truncated: rebuild the records")
        paths.append(path)
    return paths


def verify_shards(records_dir: str, info: dict[str, Any]) -> int:
    """Compare every shard's sha256 with dataset.json (``--verify``); returns the number of shards checked.

    Raises:
        DataError: the first shard whose digest differs, named.
    """
    import tensorflow as tf

    checked = 0
    for split, entry in info["splits"].items():
        if not entry["examples"]:
            continue  # an empty split has no shard to check (and shard_paths refuses it)
        for path, shard in zip(shard_paths(records_dir, info, split), entry["shards"]):
            if not shard.get("sha256"):
                continue
            digest = hashlib.sha256()
            with tf.io.gfile.GFile(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != shard["sha256"]:
                raise DataError(f"{path}: sha256 differs from dataset.json's; the shard is damaged or was replaced: "
                                "rebuild the records")
            checked += 1
    return checked


@contextlib.contextmanager
def naming_damaged_shards(records_dir: str) -> Iterator[None]:
    """Turn TensorFlow's ``DataLossError`` (which names no file) into a ``DataError`` naming the shard.

    The shards are only searched after the error: each is read once more until the one that fails.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.DataLossError as err:
        reason = err.message.split("\n")[0]
        raise DataError(f"{_damaged_shard(records_dir) or records_dir}: corrupted or truncated records "
                        f"({reason}); rebuild the records") from None


def _damaged_shard(records_dir: str) -> str | None:
    import tensorflow as tf

    info = load(records_dir)
    for split, entry in info["splits"].items():
        for shard in entry["shards"]:
            path = join(str(records_dir), shard["file"])
            try:
                for _ in tf.data.TFRecordDataset(path):
                    pass
            except tf.errors.DataLossError:
                return path
    return None
