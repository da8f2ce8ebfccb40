"""Keras metrics watched during training: per-class ROC AUC on logits of every head type.

Keras' own ``AUC(multi_label=True)`` reports only the mean and knows only sigmoid outputs; the studies
report per-class AUC, and heads differ (sigmoid multilabel, softmax single-label, U-MultiClass
3-way softmax per class). ``ClassAUC`` reads one class's positive probability from any of them and
honours the per-class loss mask as ``sample_weight`` (U-Ignore labels, and the zero-weight padding of a
multi-replica validation pass, do not count). Its AUC is NaN, not Keras' 0, when no positive or no
negative label was seen: ``MeanAUC`` leaves such classes out of the mean, and says which.
"""

from __future__ import annotations

from typing import Any, Sequence

import math

import keras
from keras import ops

from cxr_tf import reporting
from cxr_tf.models.heads import HEADS

log = reporting.logger("training")


@keras.saving.register_keras_serializable(package="cxr_tf")
class ClassAUC(keras.metrics.AUC):
    """ROC AUC of class ``index`` from logits.

    Args:
        index: class position in the label vector.
        head: a ``cxr_tf.models.heads.HEADS`` name: ``multilabel`` (logits [B, K], sigmoid), ``multiclass``
            (logits [B, K], softmax) or ``multilabel3`` (logits [B, K, 3] over negative/positive/uncertain;
            labels one-hot [B, K, 3]).
        name: metric name, e.g. ``auc_Edema``.
    """

    def __init__(self, index: int, head: str = "multilabel", name: str | None = None, **kwargs: Any) -> None:
        self.output_head = HEADS.get(head)
        kwargs.pop("from_logits", None)
        super().__init__(name=name or f"auc_{index}", **kwargs)
        self.index, self.head = index, head

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        i = self.index
        truth = self.output_head.positive_labels(y_true)[:, i]
        prob = self.output_head.probabilities(y_pred)[:, i]
        if sample_weight is not None and len(sample_weight.shape) == 2:
            sample_weight = sample_weight[:, i]
        super().update_state(truth, prob, sample_weight=sample_weight)

    def result(self) -> Any:
        """The ROC AUC, NaN when no positive or no negative label was seen (it is undefined then)."""
        # Every example falls on one side of any threshold: tp + fn counts the positives, fp + tn the negatives.
        positives = self.true_positives[0] + self.false_negatives[0]
        negatives = self.false_positives[0] + self.true_negatives[0]
        return ops.where(ops.logical_and(positives > 0, negatives > 0), super().result(), float("nan"))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(index=self.index, head=self.head)
        return config


def class_aucs(classes: Sequence[str], head: str) -> list[ClassAUC]:
    """One ``ClassAUC`` per class, named ``auc_<class>`` (spaces become underscores)."""
    return [ClassAUC(i, head, name=auc_name(c)) for i, c in enumerate(classes)]


def auc_name(class_name: str) -> str:
    """Metric name of a class's AUC: ``"Pleural Effusion"`` -> ``"auc_Pleural_Effusion"``."""
    return "auc_" + class_name.replace(" ", "_")


class MeanAUC(keras.callbacks.Callback):
    """Adds ``mean_auc`` / ``val_mean_auc`` (mean of the per-class AUCs) to the epoch logs.

    A class whose AUC is undefined (NaN: no positive or no negative label in the data) is left out of the
    mean, with one log line per set of such classes; ``mean_auc`` is NaN only when every class is.
    Listed first among callbacks, so checkpointing, early stopping, CSV and TensorBoard see it.
    """

    def __init__(self, classes: Sequence[str]) -> None:
        super().__init__()
        self.classes = list(classes)
        self.names = [auc_name(c) for c in classes]
        self.reported: set[tuple[str, tuple[str, ...]]] = set()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        for prefix in ("", "val_"):
            values = {c: float(logs[prefix + n]) for c, n in zip(self.classes, self.names) if prefix + n in logs}
            if not values:
                continue
            defined = [v for v in values.values() if math.isfinite(v)]
            logs[prefix + "mean_auc"] = sum(defined) / len(defined) if defined else float("nan")
            left_out = tuple(c for c, v in values.items() if not math.isfinite(v))
            if left_out and (prefix, left_out) not in self.reported:
                self.reported.add((prefix, left_out))
                data = "validation" if prefix else "training"
                log.warning("%smean_auc leaves out %s: no positive (or no negative) label in the %s data",
                            prefix, ", ".join(left_out), data)
