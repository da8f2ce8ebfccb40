"""Small CNNs built in code: S3's ``cnn5`` and ``baseline_cnn``, a two-block CNN for quick trials and tests.

S4's own networks are ``s4_baseline_cnn`` and ``s4_scratch_cnn`` (``s4_cnn.py``).
"""

from __future__ import annotations

import keras

from cxr_tf.models.zoo import MODELS, Backbone

# PyTorch's default (momentum 0.1 there), as the studies' small networks were trained. Keras' 0.99 lets
# the moving statistics lag a fast-learning small net by ~100 steps: after 3 epochs of 1,000 phantoms the
# inference-mode validation AUC was 0.75 while batch statistics gave 0.99; with 0.9 it was 0.99 too.
BN_MOMENTUM = 0.9


def apply_conv_block(x: keras.KerasTensor, filters: int, kernel: int, name: str) -> keras.KerasTensor:
    """Conv -> batch norm -> ReLU -> 2x2 max-pool, layers named ``<name>_conv`` ... ``<name>_pool``."""
    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def _scaled(pixels: keras.KerasTensor) -> keras.KerasTensor:
    return keras.layers.Rescaling(1 / 255.0, name="preprocess_scale")(pixels)


# The COVID-19 Radiography study's handcrafted CNN: five blocks of 32-512 channels, kernels 5,5,3,3,3.
CNN5_BLOCKS = ((32, 5), (64, 5), (128, 3), (256, 3), (512, 3))


def _cnn5(pixels: keras.KerasTensor, imagenet: bool) -> keras.KerasTensor:
    x = _scaled(pixels)
    for i, (filters, kernel) in enumerate(CNN5_BLOCKS, start=1):
        x = apply_conv_block(x, filters, kernel, name=f"block{i}")
    return x


def _baseline(pixels: keras.KerasTensor, imagenet: bool) -> keras.KerasTensor:
    """Two conv blocks (32 and 64 channels, 3x3): the smallest network of the zoo, for quick trials and tests."""
    x = _scaled(pixels)
    for i, filters in enumerate((32, 64), start=1):
        x = apply_conv_block(x, filters, 3, name=f"block{i}")
    return x


MODELS.register("cnn5")(Backbone(_cnn5, tuple((f"block{i}_",) for i in range(1, 6))))
MODELS.register("baseline_cnn")(Backbone(_baseline, (("block1_",), ("block2_",))))
