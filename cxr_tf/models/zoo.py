"""``build_model``: any zoo backbone with a logits head, as one Keras functional model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras

from cxr_tf.errors import UserError
from cxr_tf.models.heads import HEADS
from cxr_tf.registry import Registry


@dataclass(frozen=True)
class Backbone:
    """How to build a feature extractor, and its stages.

    Attributes:
        build: ``(pixels, imagenet) -> features``: pixels float32 ``[B, H, W, 3]`` in 0-255 (the backbone
            adds its own preprocessing layers), ``imagenet`` whether to load ImageNet weights;
            features ``[B, h, w, C]``.
        stages: layer-name prefixes of each stage, stage 1 first; ``--freeze-stages K`` freezes the
            layers whose names start with a prefix of stages 1..K.
        imagenet: whether Keras has ImageNet weights for it.
        preset: KerasHub preset of its ImageNet weights (``--weights imagenet`` without Keras weights).
        from_hub: ``(model, {KerasHub weight path: array}) -> unused paths``: copies a KerasHub backbone
            of the same architecture into the zoo model's layers (``--weights imagenet`` or a preset directory).
    """

    build: Callable[[keras.KerasTensor, bool], keras.KerasTensor]
    stages: tuple[tuple[str, ...], ...]
    imagenet: bool = False
    preset: str = ""
    from_hub: Callable[[keras.Model, dict], list[str]] | None = None


MODELS: Registry[Backbone] = Registry("model")


def build_model(name: str, *, num_classes: int, head: str = "multilabel", image_size: int = 224,
                channels: str = "gray3", weights: str = "none", dropout: float = 0.0,
                freeze_stages: int = 0) -> keras.Model:
    """A zoo network that takes the stored gray image and owns everything after it: its input channels,
    the backbone's own preprocessing, and a logits head.

    Args:
        name: registry name (``densenet121``, ``resnet18``, ``cnn5``...).
        num_classes: K.
        head: a ``cxr_tf.models.heads.HEADS`` name: ``multilabel`` / ``multiclass`` -> logits ``[B, K]``;
            ``multilabel3`` (U-MultiClass) -> ``[B, K, 3]`` over (negative, positive, uncertain).
        image_size: input side, pixels.
        channels: the input layer (``cxr_tf.models.layers.CHANNELS``): ``enhance`` (image, equalized,
            stretched), ``gray3`` or ``gray1`` (the image repeated in three channels).
        weights: ``none``, ``imagenet`` (Keras cache, or the KerasHub preset of resnet18/34 and vit_base),
            a ``.keras``/``.weights.h5`` file or run directory, or a KerasHub preset directory.
        dropout: rate before the dense layer. freeze_stages: freeze the first K backbone stages.

    Returns:
        ``keras.Model`` named ``name``: float32 ``[B, image_size, image_size, 1]`` gray in 0-255 ->
        float32 logits.

    Examples:
        >>> build_model("cnn5", num_classes=4, head="multiclass", image_size=64).output_shape
        (None, 4)
    """
    from cxr_tf.models import freeze, hub, weights as weights_lib
    from cxr_tf.models.layers import CHANNELS, CHANNELS_LAYER

    output = HEADS.get(head)
    backbone = MODELS.get(name)
    preset = backbone.preset if weights == "imagenet" and not backbone.imagenet else \
        weights if hub.is_preset_dir(weights) else ""
    imagenet = weights == "imagenet" and not preset
    if imagenet and not backbone.imagenet:
        raise UserError(f"--weights imagenet: no ImageNet weights for {name} in Keras or KerasHub; "
                        "use --weights none or PATH")
    channel_layer = CHANNELS.get(channels)
    inputs = keras.Input((image_size, image_size, 1), name="gray")
    pixels = channel_layer(name=CHANNELS_LAYER)(inputs)
    features = weights_lib.imagenet_or_error(name, lambda: backbone.build(pixels, imagenet)) if imagenet \
        else backbone.build(pixels, False)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    # float32 logits under mixed precision: the cross-entropies are unstable in float16.
    x = keras.layers.Dense(output.units(num_classes), name="head_logits", dtype="float32")(x)
    if output.states > 1:
        x = keras.layers.Reshape(output.output_shape(num_classes), name="head_states")(x)
    model = keras.Model(inputs, x, name=name)
    freeze.declare_stages(model, backbone.stages)
    if preset:
        hub.load_preset(model, backbone, preset, flag=weights)
    elif weights not in ("none", "imagenet"):
        weights_lib.load_path(model, weights)
    if freeze_stages:
        freeze.freeze_stages(model, freeze_stages)
    return model
