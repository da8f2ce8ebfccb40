"""Freezing: the first K stages of a backbone, or the whole backbone for head-only training.

A zoo model declares its backbone's stages (``declare_stages``, called by ``build_model`` with the zoo
entry's ``Backbone.stages``); freezing reads that declaration, so it holds whatever the model is named.

A frozen BatchNormalization layer runs in inference mode in Keras 3 (``trainable=False`` switches it),
so its moving statistics are kept while the head trains, as Keras' transfer-learning guide does.
"""

from __future__ import annotations

from typing import Sequence

import keras

from cxr_tf.errors import UserError

HEAD_PREFIX = "head_"
# Fixed input maps (ImageNet normalisation, RGB -> BGR): never trained.
PREPROCESS_PREFIX = "preprocess_"
# The model attribute holding its stages: a Python attribute of the built model, not saved in ``.keras``
# files (a reloaded model is applied, never frozen again).
STAGES_ATTRIBUTE = "backbone_stages"


def declare_stages(model: keras.Model, stages: Sequence[Sequence[str]]) -> None:
    """Record on ``model`` the layer-name prefixes of each backbone stage, stage 1 first
    (``cxr_tf.models.zoo.Backbone.stages``)."""
    setattr(model, STAGES_ATTRIBUTE, tuple(tuple(stage) for stage in stages))


def freeze_stages(model: keras.Model, k: int) -> list[str]:
    """Freeze the layers of the first ``k`` stages ``model`` declares (``declare_stages``); returns their names.

    Raises:
        UserError: ``k`` is more than the model's stages.
        ValueError: the model declares no stages (not built by ``cxr_tf.models.build_model``).
    """
    stages = getattr(model, STAGES_ATTRIBUTE, None)
    if stages is None:
        raise ValueError(f"model {model.name!r} declares no backbone stages; build it with cxr_tf.models.build_model")
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
