"""Per-class label counts of a split under a label policy, for class-weighted losses.

``dataset.json`` counts raw states; a loss needs the positives and negatives the model will actually
see, after parent propagation, U-Ones/U-Zeros/U-Ignore and the blank policy. One pass over the labels
(images are not decoded) gives them exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from cxr_tf import labels
from cxr_tf.pipeline import label_policy
from cxr_tf.pipeline.dataset import select_classes, split_examples
from cxr_tf.records import features
from cxr_tf.records import info as records_info

BATCH = 4096


def label_counts(records: str, split: str, *, classes: Sequence[str] | None = None, uncertainty: str = "ones",
                 blank: str = "zeros", propagate_parents: str = "none",
                 exclusive_classes: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives), float64 ``[K]`` each: label-weighted counts of ``split`` under the policy.

    Masked labels (U-Ignore, ``blank="ignore"``) count in neither. For ``uncertainty="multiclass"`` a
    label is positive when its state is positive (the uncertain state is its own class).
    ``exclusive_classes`` counts only the images ``make_dataset(exclusive_classes=True)`` keeps.
    """
    info = records_info.RecordsInfo.load(records)
    available = info.classes
    selected = select_classes(available, classes)
    ancestors = label_policy.ancestor_matrix(available, info.label_tree)
    others = tf.constant([c for c in range(len(available)) if c not in selected], tf.int32)
    spec = {features.LABELS_KEY: tf.io.FixedLenFeature([len(available)], tf.int64)}

    @tf.autograph.experimental.do_not_convert
    def count(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        state = tf.io.parse_example(serialized, spec)[features.LABELS_KEY]
        inside = tf.logical_not(tf.reduce_any(tf.equal(tf.gather(state, others, axis=1), labels.POSITIVE), axis=1))
        state = label_policy.propagate(state, ancestors, propagate_parents)
        label, weight = label_policy.apply_policy(tf.gather(state, selected, axis=1), uncertainty, blank)
        if exclusive_classes:
            weight *= tf.cast(inside, weight.dtype)[:, tf.newaxis]
        if uncertainty == "multiclass":
            label = label[..., 1]
        return tf.reduce_sum(label * weight, axis=0), tf.reduce_sum((1.0 - label) * weight, axis=0)

    paths = records_info.shard_paths(records, info, split)
    positives, negatives = np.zeros(len(selected)), np.zeros(len(selected))
    for pos, neg in tf.data.TFRecordDataset(paths).batch(BATCH).map(count):
        positives += pos.numpy()
        negatives += neg.numpy()
    return positives, negatives


def example_count(records: str, split: str, *, classes: Sequence[str] | None = None,
                  exclusive_classes: bool = False) -> int:
    """Examples ``make_dataset`` yields for ``split`` without balancing.

    ``dataset.json``'s counts give it (``split_examples``) unless ``exclusive_classes``: which images lie
    within the classes is known only from their labels, so that takes one pass over them (no image is
    decoded).
    """
    info = records_info.RecordsInfo.load(records)
    available = info.classes
    selected = select_classes(available, classes)
    if not exclusive_classes:
        return split_examples(info, split, selected)
    others = [c for c in range(len(available)) if c not in selected]
    spec = {features.LABELS_KEY: tf.io.FixedLenFeature([len(available)], tf.int64)}
    kept = 0
    for serialized in tf.data.TFRecordDataset(records_info.shard_paths(records, info, split)).batch(BATCH):
        state = tf.io.parse_example(serialized, spec)[features.LABELS_KEY].numpy()
        keep = ~(state[:, others] == labels.POSITIVE).any(axis=1)
        if info.task == "multiclass":
            keep &= (state[:, selected] == labels.POSITIVE).any(axis=1)
        kept += int(keep.sum())
    return kept
