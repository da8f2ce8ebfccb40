"""ResNet18 and ResNet34 (He et al. 2016, https://arxiv.org/abs/1512.03385), built in code.

Keras ships neither. Basic blocks (two 3x3 convolutions), Keras-Hub style names
(``stem_conv``, ``stack2_block1_conv1``...). Padding and BatchNorm epsilon are PyTorch's (explicit
zero padding before every strided layer, epsilon 1e-5), as in KerasHub's ``ResNetBackbone``, so
``--weights imagenet`` can copy ImageNet weights from a KerasHub ``ResNetBackbone`` layer for layer
(``from_hub``) and give the same features: torchvision's own ImageNet-1k weights (what S3, in PyTorch,
fine-tuned), which KerasHub converts from timm's ``resnet18.tv_in1k`` / ``resnet34.tv_in1k``
(``PRESETS``; KerasHub ships no plain ResNet34 preset of its own, only the ResNet-D ``resnet_vd_34``).

Stages of ``--freeze-stages`` are S3's blocks: S3 (COVID-19 Radiography) describes ResNet as "some pooling
and convolution layers, grouped in 4 blocks" and freezes 0-4 of them, so ``--freeze-stages K`` freezes
``stack1``..``stack{K}``, and the stem (7x7 convolution and max-pool) with the first: frozen block 1
weights fed by a stem that keeps training would see their input drift. ``K = 4`` leaves only the head.
"""

from __future__ import annotations

import keras

import numpy as np

from cxr_tf.models.applications import TORCH_MEAN, TORCH_STD
from cxr_tf.models.cnn import BN_MOMENTUM
from cxr_tf.models.zoo import MODELS, Backbone

# PyTorch's BatchNorm epsilon, which the ImageNet weights were trained with (Keras' default is 1e-3).
BN_EPSILON = 1e-5


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def apply_basic_block(x: keras.KerasTensor, filters: int, stride: int, name: str) -> keras.KerasTensor:
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut (1x1 projection when the shape changes), then ReLU."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = _bn(f"{name}_proj_bn")(shortcut)
    if stride != 1:
        # One pixel on every side, as PyTorch pads; "same" would pad only the bottom and right.
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False,
                            name=f"{name}_conv1")(x)
    x = _bn(f"{name}_bn1")(x)
    x = keras.layers.ReLU(name=f"{name}_relu1")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = _bn(f"{name}_bn2")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def _resnet(blocks: tuple[int, ...]):
    def build(pixels: keras.KerasTensor, imagenet: bool) -> keras.KerasTensor:
        x = keras.layers.Rescaling(1 / 255.0, name="preprocess_scale")(pixels)
        x = keras.layers.Normalization(mean=TORCH_MEAN, variance=[s * s for s in TORCH_STD],
                                       name="preprocess_imagenet")(x)
        x = keras.layers.ZeroPadding2D(3, name="stem_pad")(x)
        x = keras.layers.Conv2D(64, 7, strides=2, use_bias=False, name="stem_conv")(x)
        x = _bn("stem_bn")(x)
        x = keras.layers.ReLU(name="stem_relu")(x)
        # Zero padding before the max-pool is PyTorch's -inf padding here: its input is a ReLU's, >= 0.
        x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
        for stack, (count, filters) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
            for block in range(1, count + 1):
                stride = 2 if block == 1 and stack > 1 else 1
                x = apply_basic_block(x, filters, stride, name=f"stack{stack}_block{block}")
        return x

    return build


# Our layer suffix -> KerasHub's (ResNetBackbone, basic blocks): conv "_1_conv", its BN "_1_bn", ...
HUB_SUFFIXES = {"conv1": "1_conv", "bn1": "1_bn", "conv2": "2_conv", "bn2": "2_bn", "proj": "0_conv", "proj_bn": "0_bn"}
HUB_BN = ("gamma", "beta", "moving_mean", "moving_variance")


def hub_weight_paths(layer: keras.layers.Layer) -> list[str]:
    """KerasHub ``ResNetBackbone`` weight paths of one of our layers, in ``layer.weights`` order.

    ``stem_conv`` is ``conv1_conv``; ``stack{s}_block{b}_conv1`` is ``stack{s-1}_block{b-1}_1_conv`` (KerasHub
    counts from 0).
    """
    if layer.name.startswith("stem_"):
        hub = {"stem_conv": "conv1_conv", "stem_bn": "conv1_bn"}[layer.name]
    else:
        stack, block, suffix = layer.name.split("_", 2)
        hub = f"stack{int(stack[5:]) - 1}_block{int(block[5:]) - 1}_{HUB_SUFFIXES[suffix]}"
    if isinstance(layer, keras.layers.BatchNormalization):
        return [f"{hub}/{name}" for name in HUB_BN]
    return [f"{hub}/kernel"]


def from_hub(model: keras.Model, weights: dict[str, np.ndarray]) -> list[str]:
    """Copy a KerasHub ResNet backbone's weights (``{path: array}``) into ``model``'s ``stem_``/``stack*`` layers.

    Returns the KerasHub paths that were not used (another network's extra layers); a missing or
    misshapen weight raises ``KeyError``/``ValueError`` naming it.
    """
    used = set()
    for layer in model.layers:
        if not layer.weights or not layer.name.startswith(("stem_", "stack")):
            continue
        paths = hub_weight_paths(layer)
        layer.set_weights([weights[path] for path in paths])
        used.update(paths)
    return sorted(set(weights) - used)


STAGES = (("stem_", "stack1_"), ("stack2_",), ("stack3_",), ("stack4_",))
PRESETS = {"resnet18": "hf://timm/resnet18.tv_in1k", "resnet34": "hf://timm/resnet34.tv_in1k"}
for _name, _blocks in (("resnet18", (2, 2, 2, 2)), ("resnet34", (3, 4, 6, 3))):
    MODELS.register(_name)(Backbone(_resnet(_blocks), STAGES, preset=PRESETS[_name], from_hub=from_hub))
