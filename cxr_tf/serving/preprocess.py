"""One image -> one model input, in TensorFlow ops, shared by predict, explain and the exported model.

An image file of any size is brought to the run's input the way the records were made and read:
the records' resize mode (``pad``, ``squash`` or ``crop``, from ``dataset.json``) straight to the
model's side, then the run's input channels (``enhance``, ``gray3``, ``gray1``). Pure TensorFlow ops so
the same function can live inside an exported SavedModel's serving signature.

Training images were resized by OpenCV's ``INTER_AREA`` when the records were built; here an
antialiased bilinear resize stands in for it (area averaging when shrinking, so no aliasing of rib
edges), which keeps the exported model free of OpenCV at the cost of gray-level differences of a few
units at edges.
"""

from __future__ import annotations

import tensorflow as tf

from cxr_tf.pipeline.dataset import to_channels

RESIZE_MODES = ("pad", "squash", "crop")


def fit_square(image: tf.Tensor, size: int, mode: str) -> tf.Tensor:
    """float32 [H, W, 1] (any H, W) -> float32 [size, size, 1] by ``mode``.

    The same geometry as ``cxr_tf.imaging.resize`` (scale, rounding and centring), so a box or a
    cardiothoracic ratio lands where it did in the records.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r} is not one of {RESIZE_MODES}")
    if mode == "squash":
        return tf.image.resize(image, [size, size], antialias=True)
    shape = tf.cast(tf.shape(image)[:2], tf.float64)
    scale = (tf.reduce_min if mode == "pad" else tf.reduce_max)(size / shape)
    scaled = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 1)
    image = tf.image.resize(image, scaled, antialias=True)
    offset = (size - scaled) // 2
    if mode == "pad":
        return tf.pad(image, [[offset[0], size - scaled[0] - offset[0]], [offset[1], size - scaled[1] - offset[1]],
                              [0, 0]])
    return image[-offset[0]:-offset[0] + size, -offset[1]:-offset[1] + size]


def model_input(gray: tf.Tensor, *, image_size: int, resize: str, channels: str) -> tf.Tensor:
    """One model input from one gray image.

    Args:
        gray: uint8 [H, W] or [H, W, 1], any size (e.g. ``cxr_tf.imaging.decode_gray8`` output).
        image_size: the model's input side, pixels.
        resize: ``pad`` | ``squash`` | ``crop``, as the run's records were built.
        channels: ``enhance`` | ``gray3`` | ``gray1``, as the run was trained.

    Returns:
        float32 [image_size, image_size, C] with values 0-255 (C = 1 for gray1, else 3).
    """
    image = tf.convert_to_tensor(gray)
    if image.shape.rank == 2:
        image = image[..., tf.newaxis]
    image = tf.clip_by_value(fit_square(tf.cast(image, tf.float32), image_size, resize), 0.0, 255.0)
    out = to_channels(image, channels)
    out.set_shape([image_size, image_size, 1 if channels == "gray1" else 3])
    return out
