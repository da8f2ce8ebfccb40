"""TFDS metadata of a records directory: ``dataset_info.json`` and ``features.json`` beside ``dataset.json``.

With them, ``tfds.builder_from_directory(DIR)`` reads a build_records output as a TFDS dataset: its
splits with their example counts, and every feature of ``features.py`` decoded (the image as uint8
``[S, S, 1]``, the raw label states as int64 ``[K]``, texts as strings). Nothing is copied or renamed:
the feature connectors describe the ``tf.train.Example`` keys cxr_tf already writes (TFDS joins nested
feature names with ``/``, so ``{"image": {"encoded": ...}}`` is the key ``image/encoded``), and the
split's file template describes the shard names of ``build.shard_name``.

Everything is derived from ``dataset.json``'s content, so a build made before this file existed gets its
metadata from ``write(DIR, info.RecordsInfo.load(DIR))`` (``cxr_tf.tfds.builder_from_records`` does this).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cxr_tf import labels
from cxr_tf.records import features, info

# ``build.shard_name``'s ``{split}-{i:05d}-of-{n:05d}.tfrecord`` in TFDS' template language (TFDS pads
# shard numbers to 5 digits, as build_records does).
FILE_TEMPLATE = "{SPLIT}-{SHARD_X_OF_Y}.tfrecord"
VERSION = "1.0.0"
TFDS_FILES = ("dataset_info.json", "features.json")


def feature_connector(num_classes: int, image_size: int, encoding: str) -> Any:
    """The ``tfds.features.FeaturesDict`` of a cxr_tf record (keys and types of ``features.py``).

    Args:
        num_classes: length of the ``labels/state`` feature.
        image_size: stored side, pixels (images are ``[image_size, image_size, 1]`` uint8).
        encoding: ``png`` or ``jpeg``.
    """
    import tensorflow_datasets as tfds

    f = tfds.features
    flat = {
        features.IMAGE_KEY: f.Image(shape=(image_size, image_size, 1), encoding_format=encoding),
        **{key: f.Text() for key in (features.FORMAT_KEY, features.PATH_KEY, features.PATIENT_KEY,
                                     features.VIEW_KEY, features.PROJECTION_KEY)},
        **{key: f.Scalar(np.int64) for key in (features.HEIGHT_KEY, features.WIDTH_KEY,
                                               features.ORIGINAL_HEIGHT_KEY, features.ORIGINAL_WIDTH_KEY)},
        features.LABELS_KEY: f.Tensor(shape=(num_classes,), dtype=np.int64),
        features.BOX_LABEL_KEY: f.Tensor(shape=(None,), dtype=np.int64),
        **{key: f.Tensor(shape=(None,), dtype=np.float32) for key in features.BOX_COORD_KEYS},
    }
    return f.FeaturesDict(_nest(flat))


def example(record: features.Record) -> dict[str, Any]:
    """A ``Record`` as the nested dict ``feature_connector`` encodes (TFDS builders yield these)."""
    boxes = np.asarray(record.boxes, np.float32).reshape(-1, 5)
    flat = {
        features.IMAGE_KEY: record.image,
        features.FORMAT_KEY: record.image_format,
        features.HEIGHT_KEY: record.height,
        features.WIDTH_KEY: record.width,
        features.ORIGINAL_HEIGHT_KEY: record.original_height,
        features.ORIGINAL_WIDTH_KEY: record.original_width,
        features.PATH_KEY: record.path,
        features.PATIENT_KEY: record.patient_id,
        features.VIEW_KEY: record.view,
        features.PROJECTION_KEY: record.projection,
        features.LABELS_KEY: np.asarray(record.states, np.int64),
        features.BOX_LABEL_KEY: boxes[:, 0].astype(np.int64),
        **{key: boxes[:, column] for column, key in enumerate(features.BOX_COORD_KEYS, start=1)},
    }
    return _nest(flat)


def description(classes: list[str]) -> str:
    """What ``labels/state`` holds, for the dataset's TFDS description."""
    codes = ", ".join(f"{code} {name}" for code, name in labels.STATE_NAMES.items())
    return (f"cxr_tf records. labels/state: int64 [{len(classes)}], the raw state of each class in the order "
            f"{', '.join(classes)} ({codes}); the label policy is applied when reading.")


def write(out: str, content: info.RecordsInfo) -> None:
    """Write ``dataset_info.json`` and ``features.json`` of the records in ``out`` described by ``content``
    (the ``dataset.json`` of the build; its shards must exist, their sizes are read)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core import dataset_info, file_adapters, naming

    template = naming.ShardedFileTemplate(data_dir=out, template=FILE_TEMPLATE, dataset_name=content.dataset,
                                          filetype_suffix="tfrecord")
    splits = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=[shard.records for shard in entry.shards],
            num_bytes=sum(tf.io.gfile.stat(info.join(out, shard.file)).length for shard in entry.shards),
            filename_template=template.replace(split=split))
        for split, entry in content.splits.items()
    ]
    identity = dataset_info.DatasetIdentity(name=content.dataset, version=tfds.core.Version(VERSION),
                                            data_dir=out, module_name="")
    ds_info = tfds.core.DatasetInfo(
        builder=identity, description=description(list(content.classes)),
        features=feature_connector(len(content.classes), content.image_size, content.encoding))
    ds_info.set_file_format(file_adapters.FileFormat.TFRECORD)
    ds_info.set_splits(tfds.core.SplitDict(splits))
    ds_info.write_to_directory(out)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a/b": x, "c": y}`` -> ``{"a": {"b": x}, "c": y}``."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested
