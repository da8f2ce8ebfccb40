"""The model's input layers: the stored gray image (0-255, one channel) -> the three channels a backbone takes.

Every zoo model starts with one of these (``CHANNELS``, by the run's ``--channels``), so the input
pipeline streams one gray channel and the enhancement runs where the model runs (on a GPU, the host no
longer makes and copies three float channels per image). Both layers are registered with Keras under
the package ``cxr_tf``: ``keras.saving.load_model`` reloads a zoo model in safe mode once
``cxr_tf.models`` is imported.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from cxr_tf.pipeline import enhance as enhance_lib
from cxr_tf.registry import Registry

# The name of the input layer in every zoo model (TensorBoard's input images read its output).
CHANNELS_LAYER = "input_channels"


def _gray_levels(images: tf.Tensor) -> tf.Tensor:
    """float or uint8 ``[B, H, W, 1]`` 0-255 -> int32 ``[B, H*W]`` gray levels (nearest, half up, clamped),
    the rounding of ``cxr_tf.pipeline.enhance.histogram``."""
    values = tf.clip_by_value(tf.cast(images[..., 0], tf.float32), 0.0, enhance_lib.LEVELS - 1.0)
    levels = tf.cast(values + 0.5, tf.int32)
    return tf.reshape(levels, [tf.shape(levels)[0], -1])


@keras.saving.register_keras_serializable(package="cxr_tf")
class EnhancementChannels(keras.layers.Layer):
    """The thesis' enhancement channels inside the model: image, histogram-equalized, contrast-stretched.

    Per image, the same channels as ``cxr_tf.pipeline.enhance.enhance`` (one 256-bin histogram, one
    lookup table per channel), for a whole batch at once: the histograms are one ``DenseBincount``
    (``tf.math.bincount``'s kernel) over the rows of ``[B, H*W]`` gray levels and the tables are applied
    by one batched ``tf.gather``, ops XLA compiles on CPU and GPU (``jit_compile=True``). Computed in float32 whatever the mixed-
    precision policy (gray levels and pixel counts must stay exact); the backbone casts the output.

    Input: float32 or uint8 ``[B, H, W, 1]`` 0-255 (floats are rounded to the nearest gray level).
    Output: float32 ``[B, H, W, 3]`` 0-255: channel 0 the (rounded) image, 1 its equalization, 2 its
    1st-99th percentile stretch.

    Examples:
        >>> EnhancementChannels()(tf.zeros([2, 8, 8, 1])).shape
        TensorShape([2, 8, 8, 3])
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, images: tf.Tensor) -> tf.Tensor:
        levels = _gray_levels(images)
        # DenseBincount with a constant size: XLA needs the output length at compile time, which
        # tf.math.bincount derives from the data (its maximum).
        hist = tf.raw_ops.DenseBincount(input=levels, size=enhance_lib.LEVELS, weights=tf.zeros([0], tf.int32),
                                        binary_output=False)
        tables = enhance_lib.channel_tables(hist)  # [B, 256, 3]
        out = tf.gather(tables, levels, batch_dims=1)  # [B, H*W, 3]
        shape = tf.shape(images)
        return tf.reshape(out, tf.stack([shape[0], shape[1], shape[2], 3]))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], 3)


@keras.saving.register_keras_serializable(package="cxr_tf")
class GrayToRGB(keras.layers.Layer):
    """The gray image repeated in three channels, for backbones made for colour (ImageNet) input.

    Input: float32 or uint8 ``[B, H, W, 1]`` 0-255. Output: float32 ``[B, H, W, 3]`` 0-255.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, images: tf.Tensor) -> tf.Tensor:
        return tf.tile(tf.cast(images, tf.float32), [1, 1, 1, 3])

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], 3)


# ``--channels``: what the model makes of its one gray input channel. ``gray1`` and ``gray3`` are the
# same model (the image, repeated for the backbone); both names stay valid for recipes and runs.
CHANNELS: Registry[type[keras.layers.Layer]] = Registry("channels")
CHANNELS.register("enhance")(EnhancementChannels)
CHANNELS.register("gray3")(GrayToRGB)
CHANNELS.register("gray1")(GrayToRGB)
