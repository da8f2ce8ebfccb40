"""Freezing: the first K stages of a backbone, or the whole backbone for head-only training.

A frozen BatchNormalization layer runs in inference mode in Keras 3 (``trainable=False`` switches it),
so its moving statistics are kept while the head trains, as Keras' transfer-learning guide does.
"""

from __future__ import annotations

import keras

from cxr_tf.errors import UserError
from cxr_tf.models.zoo import MODELS

HEAD_PREFIX = "head_"
# Fixed input maps (ImageNet normalisation, RGB -> BGR): never trained.
PREPROCESS_PREFIX = "preprocess_"


def freeze_stages(model: keras.Model, k: int) -> list[str]:
    """Freeze the layers of the first ``k`` stages of ``model``'s backbone; returns their names."""
    stages = MODELS.get(model.name).stages
    if not 0 <= k <= len(stages):
        raise UserError(f"--freeze-stages {k}: {model.name} has {len(stages)} stages (0-{len(stages)})")
    prefixes = tuple(p for stage in stages[:k] for p in stage)
    frozen = [layer.name for layer in model.layers if layer.name.startswith(prefixes)]
    for layer in model.layers:
        if layer.name in frozen:
            layer.trainable = False
    return frozen


def freeze_backbone(model: keras.Model) -> None:
    """Freeze everything but the head (``head_*`` layers)."""
    for layer in model.layers:
        layer.trainable = layer.name.startswith(HEAD_PREFIX)


def unfreeze(model: keras.Model, keep_frozen_stages: int = 0) -> None:
    """Make every layer trainable again, except preprocessing and the first ``keep_frozen_stages`` stages."""
    for layer in model.layers:
        layer.trainable = not layer.name.startswith(PREPROCESS_PREFIX)
    if keep_frozen_stages:
        freeze_stages(model, keep_frozen_stages)
