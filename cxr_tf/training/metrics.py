"""Keras metrics watched during training: per-class ROC AUC on logits of every head type.

Keras' own ``AUC(multi_label=True)`` reports only the mean and knows only sigmoid outputs; the studies
report per-class AUC, and heads differ (sigmoid multilabel, softmax single-label, U-MultiClass
3-way softmax per class). ``ClassAUC`` reads one class's positive probability from any of them and
honours the per-class loss mask as ``sample_weight`` (U-Ignore labels do not count).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

HEADS = ("multilabel", "multiclass", "multilabel3")


@keras.saving.register_keras_serializable(package="cxr_tf")
class ClassAUC(keras.metrics.AUC):
    """ROC AUC of class ``index`` from logits.

    Args:
        index: class position in the label vector.
        head: ``multilabel`` (logits [B, K], sigmoid), ``multiclass`` (logits [B, K], softmax) or
            ``multilabel3`` (logits [B, K, 3] over negative/positive/uncertain; labels one-hot [B, K, 3]).
        name: metric name, e.g. ``auc_Edema``.
    """

    def __init__(self, index: int, head: str = "multilabel", name: str | None = None, **kwargs: Any) -> None:
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        kwargs.pop("from_logits", None)
        super().__init__(name=name or f"auc_{index}", **kwargs)
        self.index, self.head = index, head

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        i = self.index
        if self.head == "multilabel":
            truth, prob = y_true[:, i], ops.sigmoid(y_pred[:, i])
        elif self.head == "multiclass":
            truth, prob = y_true[:, i], ops.softmax(y_pred, axis=-1)[:, i]
        else:
            truth, prob = y_true[:, i, 1], ops.softmax(y_pred[:, i, :], axis=-1)[:, 1]
        if sample_weight is not None and len(sample_weight.shape) == 2:
            sample_weight = sample_weight[:, i]
        super().update_state(truth, prob, sample_weight=sample_weight)

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

    Listed first among callbacks, so checkpointing, early stopping, CSV and TensorBoard see it.
    """

    def __init__(self, classes: Sequence[str]) -> None:
        super().__init__()
        self.names = [auc_name(c) for c in classes]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        for prefix in ("", "val_"):
            values = [float(logs[prefix + n]) for n in self.names if prefix + n in logs]
            if values:
                logs[prefix + "mean_auc"] = sum(values) / len(values)
