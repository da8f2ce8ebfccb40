"""Class balancing for single-label tasks with tf.data's own resampling.

``oversample`` is the seeds' weighted random sampler (S3): classes are drawn with equal probability,
small classes repeating, for as many examples per epoch as the split has. ``undersample`` is S4's
down-sampling: every class contributes as many examples as the smallest one, a fresh random subset of
the larger classes each epoch when the stream is shuffled. Both run on parsed records, before images are
decoded; each class reads its own filtered copy of the (cheap) record stream.
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from cxr_tf.registry import Choices

BALANCE_MODES = Choices("balance mode", ("none", "oversample", "undersample"))


def _is_class(c: int) -> Callable[[dict], tf.Tensor]:
    @tf.autograph.experimental.do_not_convert
    def predicate(element: dict) -> tf.Tensor:
        return tf.equal(tf.argmax(element["label"], output_type=tf.int32), c)

    return predicate


def balance(records: tf.data.Dataset, mode: str, counts: Sequence[int], seed: int | None) -> tf.data.Dataset:
    """Resample ``records`` so classes appear equally often.

    Args:
        records: dataset of feature dicts with a one-hot float32 ``"label"`` ``[K]``.
        mode: ``none``, ``oversample`` or ``undersample``.
        counts: examples per class in the split (``dataset.json`` counts), in class order.
        seed: seed of the class draw; ``None`` draws differently every run.

    Returns:
        The balanced dataset (finite: ``sum(counts)`` examples for ``oversample``,
        ``len(present classes) * min(present counts)`` for ``undersample``).
    """
    BALANCE_MODES.check(mode, "balance")
    if mode == "none":
        return records
    present = [c for c, count in enumerate(counts) if count > 0]
    per_class = [records.filter(_is_class(c)) for c in present]
    if mode == "oversample":
        per_class = [ds.repeat() for ds in per_class]
        total = sum(counts)
    else:
        smallest = min(counts[c] for c in present)
        per_class = [ds.take(smallest) for ds in per_class]
        total = smallest * len(present)
    weights = [1.0 / len(present)] * len(present)
    return tf.data.Dataset.sample_from_datasets(
        per_class, weights, seed=seed, rerandomize_each_iteration=True).take(total)
