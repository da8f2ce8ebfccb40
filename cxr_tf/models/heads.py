"""The output heads of the zoo: what a model's logits mean, and how they become per-class probabilities.

Three heads, one ``Head`` each in ``HEADS``; a run's ``config.toml``-derived task, an export's
``metadata.json`` and a ``ClassAUC``'s Keras config store the head's ``name``:

* ``multilabel``: logits ``[B, K]``, a sigmoid per class (findings co-occur: CheXpert, NIH).
* ``multiclass``: logits ``[B, K]``, one softmax over the K classes (one finding per image: Kermany,
  COVID radiography).
* ``multilabel3``: U-MultiClass (Irvin et al. 2019, CheXpert, https://arxiv.org/abs/1901.07031): logits
  ``[B, K, 3]``, a softmax per class over (negative, positive, uncertain); the class's probability is its
  positive state's.

Every command turns logits into probabilities through ``Head.probabilities``, picks a class's ground truth
with ``Head.positive_labels`` and its Grad-CAM target with ``Head.class_logit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cxr_tf.registry import Registry

# U-MultiClass labels and logits are ordered (negative, positive, uncertain) on their last axis
# (cxr_tf.pipeline.label_policy); the positive state is the class's probability.
POSITIVE_STATE = 1


@dataclass(frozen=True)
class Head:
    """What a model's output means.

    Attributes:
        name: the registry name, stored in run and export files (``multilabel``...).
        task: the records' task it learns (``dataset.json``'s ``task``): ``multilabel`` | ``multiclass``.
        states: logits per class: 1, or 3 for U-MultiClass (negative, positive, uncertain).
        exclusive: one softmax over the classes (one class per image): an image's prediction is its top
            class (no per-class thresholds), its calibration a single temperature, its training weights
            per image.
        monitor: the ``history.csv`` column that chooses the best epoch (``val_accuracy`` for an
            exclusive head, else ``val_mean_auc``).
    """

    name: str
    task: str
    states: int
    exclusive: bool
    monitor: str

    def units(self, num_classes: int) -> int:
        """Output units of the dense layer for ``num_classes`` classes (K, or 3K for U-MultiClass)."""
        return num_classes * self.states

    def output_shape(self, num_classes: int) -> tuple[int, ...]:
        """The logits' shape after the batch axis: ``(K,)``, or ``(K, 3)`` for U-MultiClass."""
        return (num_classes,) if self.states == 1 else (num_classes, self.states)

    def probabilities(self, logits: Any) -> Any:
        """Positive-class probability per class (NumPy or tensors, graph-safe).

        Args:
            logits: float ``[B, *output_shape(K)]``.

        Returns:
            float32 ``[B, K]`` in [0, 1] (a Keras-backend tensor; ``np.asarray`` gives NumPy).
        """
        from keras import ops

        logits = ops.cast(logits, "float32")
        if self.states > 1:
            return ops.softmax(logits, axis=-1)[..., POSITIVE_STATE]
        return ops.softmax(logits, axis=-1) if self.exclusive else ops.sigmoid(logits)

    def positive_labels(self, labels: Any) -> Any:
        """Labels ``[B, *output_shape(K)]`` (one-hot states for U-MultiClass) -> 0/1 ``[B, K]``: whether
        each class is positive (an uncertain U-MultiClass label counts as not positive)."""
        return labels[..., POSITIVE_STATE] if self.states > 1 else labels

    def class_logit(self, logits: Any, class_indices: Any) -> Any:
        """The logits whose gradients Grad-CAM follows: ``[B]`` from ``logits`` ``[B, *output_shape(K)]``, each
        image's at its own class (int ``[B]``), the positive state's for U-MultiClass."""
        import keras

        logits = logits[..., POSITIVE_STATE] if self.states > 1 else logits
        return keras.ops.take_along_axis(logits, keras.ops.convert_to_tensor(class_indices)[:, None], axis=1)[:, 0]

    def decisions(self, probs: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
        """bool ``[N, K]``: the classes predicted from probabilities ``[N, K]``: the top class of each
        image for an exclusive head (``thresholds`` unused), else ``probs >= thresholds`` ([K])."""
        probs = np.asarray(probs)
        if self.exclusive:
            return probs.argmax(axis=1)[:, None] == np.arange(probs.shape[1])[None, :]
        return probs >= np.asarray(thresholds)[None, :]


HEADS: Registry[Head] = Registry("head")
MULTILABEL = HEADS.register("multilabel")(
    Head("multilabel", task="multilabel", states=1, exclusive=False, monitor="val_mean_auc"))
MULTICLASS = HEADS.register("multiclass")(
    Head("multiclass", task="multiclass", states=1, exclusive=True, monitor="val_accuracy"))
MULTILABEL3 = HEADS.register("multilabel3")(
    Head("multilabel3", task="multilabel", states=3, exclusive=False, monitor="val_mean_auc"))


def head_for(task: str, uncertainty: str) -> Head:
    """The head that learns a records ``task`` under the ``uncertainty`` label policy: a single-label task
    gets ``multiclass``; a multilabel one ``multilabel3`` when uncertain labels are a state of their own
    (``--uncertainty multiclass``), else ``multilabel``."""
    if task == MULTICLASS.task:
        return MULTICLASS
    return MULTILABEL3 if uncertainty == "multiclass" else MULTILABEL
