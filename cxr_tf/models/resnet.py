"""ResNet18 and ResNet34 (He et al. 2016, https://arxiv.org/abs/1512.03385), built in code.

Keras ships neither. Basic blocks (two 3x3 convolutions), Keras-Hub style names
(``stem_conv``, ``stack2_block1_conv1``...).

Stages of ``--freeze-stages`` are S3's blocks: S3 (COVID-19 Radiography) describes ResNet as "some pooling
and convolution layers, grouped in 4 blocks" and freezes 0-4 of them, so ``--freeze-stages K`` freezes
``stack1``..``stack{K}``, and the stem (7x7 convolution and max-pool) with the first: frozen block 1
weights fed by a stem that keeps training would see their input drift. ``K = 4`` leaves only the head.
"""

from __future__ import annotations

import keras

from cxr_tf.models.applications import TORCH_MEAN, TORCH_STD
from cxr_tf.models.cnn import BN_MOMENTUM
from cxr_tf.models.zoo import MODELS, Backbone


def apply_basic_block(x: keras.KerasTensor, filters: int, stride: int, name: str) -> keras.KerasTensor:
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut (1x1 projection when the shape changes), then ReLU."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(x)
    x = keras.layers.ReLU(name=f"{name}_relu1")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def _resnet(blocks: tuple[int, ...]):
    def build(pixels: keras.KerasTensor, imagenet: bool) -> keras.KerasTensor:
        x = keras.layers.Rescaling(1 / 255.0, name="preprocess_scale")(pixels)
        x = keras.layers.Normalization(mean=TORCH_MEAN, variance=[s * s for s in TORCH_STD],
                                       name="preprocess_imagenet")(x)
        x = keras.layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
        x = keras.layers.ReLU(name="stem_relu")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
        for stack, (count, filters) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
            for block in range(1, count + 1):
                stride = 2 if block == 1 and stack > 1 else 1
                x = apply_basic_block(x, filters, stride, name=f"stack{stack}_block{block}")
        return x

    return build


STAGES = (("stem_", "stack1_"), ("stack2_",), ("stack3_",), ("stack4_",))
MODELS.register("resnet18")(Backbone(_resnet((2, 2, 2, 2)), STAGES))
MODELS.register("resnet34")(Backbone(_resnet((3, 4, 6, 3)), STAGES))
