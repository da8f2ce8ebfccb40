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
          "shards": [{"file": "train-00000-of-00002.tfrecord", "records": 617, "sha256": "..."}, ...]
        }, ...
      },
      "skipped": {"total": 3, "by_reason": {"corrupt image": 2, "missing file": 1}},
      "build_args": {...},                   # the resolved build config
      "cxr_tf_version": "0.1.0"
    }

Paths go through ``tf.io.gfile`` when TensorFlow is importable so ``gs://``/``s3://`` work.
"""

from __future__ import annotations

import json
from typing import Any

from cxr_tf.errors import UserError

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
        info = json.load(fh)
    if info.get("format") != FORMAT:
        raise UserError(f"{path}: format {info.get('format')!r} is not {FORMAT}; rebuild the records")
    return info


def split_entry(records_dir: str, info: dict[str, Any], split: str) -> dict[str, Any]:
    """``info["splits"][split]``; a split that is missing or holds no example is a ``UserError`` naming both."""
    entry = info["splits"].get(split)
    if entry is None or not entry["examples"]:
        have = ", ".join(f"{name} ({s['examples']})" for name, s in info["splits"].items()) or "none"
        raise UserError(f"--records {records_dir} has no {'' if entry is None else 'example in its '}split "
                        f"{split!r}; its splits (examples): {have}")
    return entry


def shard_paths(records_dir: str, info: dict[str, Any], split: str) -> list[str]:
    """Full paths of the shards of ``split``; an unknown or empty split lists the ones there are."""
    return [join(str(records_dir), shard["file"]) for shard in split_entry(records_dir, info, split)["shards"]]
