"""Tiny records directories written in-test (``features.serialize`` + a ``RecordsInfo`` saved as ``dataset.json``)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from cxr_tf import labels
from cxr_tf.records import features, info


def write_records(
    tmp_path: Path,
    images: Sequence[np.ndarray],
    states: Sequence[Sequence[int]],
    classes: Sequence[str],
    task: str = "multilabel",
    label_tree: Mapping[str, str] | None = None,
    split: str = "train",
    shards: int = 2,
    encoding: str = "png",
) -> str:
    """Write uint8 ``[S, S]`` ``images`` with label ``states`` as ``split`` of a records dir; return its path.

    Example ``i`` goes to shard ``i % shards``. Counts in ``dataset.json`` are computed from ``states``.
    """
    out = Path(tmp_path) / "records"
    out.mkdir(parents=True, exist_ok=True)
    import tensorflow as tf

    size = int(images[0].shape[0])
    names = [f"{split}-{s:05d}-of-{shards:05d}.tfrecord" for s in range(shards)]
    writers = [tf.io.TFRecordWriter(str(out / name)) for name in names]
    per_shard = [0] * shards
    for i, (image, state) in enumerate(zip(images, states)):
        ok, encoded = cv2.imencode(".png" if encoding == "png" else ".jpg", image)
        assert ok
        record = features.Record(
            image=encoded.tobytes(), image_format=encoding, height=image.shape[0], width=image.shape[1],
            original_height=image.shape[0], original_width=image.shape[1], path=f"img{i}.png",
            patient_id=f"p{i}", view="frontal", projection="PA", states=list(state))
        writers[i % shards].write(features.serialize(record))
        per_shard[i % shards] += 1
    for writer in writers:
        writer.close()
    column = np.asarray(states).reshape(len(states), len(classes))
    counts = {name: {state_name: int((column[:, k] == code).sum()) for code, state_name in labels.STATE_NAMES.items()}
              for k, name in enumerate(classes)}
    stored = tuple(info.Shard(name, count, (out / name).stat().st_size,
                              hashlib.sha256((out / name).read_bytes()).hexdigest())
                   for name, count in zip(names, per_shard))
    entry = info.Split(examples=len(images), patients=len(images), counts=counts, shards=stored)
    if (out / info.FILENAME).exists():
        previous = info.RecordsInfo.load(str(out))
        dataset = dataclasses.replace(previous, splits={**previous.splits, split: entry})
    else:
        dataset = info.RecordsInfo(dataset="test", task=task, classes=tuple(classes), image_size=size, resize="pad",
                                   encoding=encoding, splits={split: entry}, label_tree=dict(label_tree or {}))
    dataset.save(str(out))
    return str(out)
