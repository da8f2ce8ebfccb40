"""An image -> the model's input: the one definition shared by fit, evaluate, explain, predict and export.

A model takes the stored gray image (float32 ``[B, S, S, 1]``, 0-255) and owns everything after it
(channels, ImageNet scaling, head: ``cxr_tf.models``). What comes before is this module:

* records (fit, evaluate, explain --records): the image stored by ``build_records`` (decoded and resized
  by ``cxr_tf.io.imaging``: OpenCV ``INTER_AREA`` to the records' side, ``pad``/``squash``/``crop``) ->
  ``to_model_side``, a bilinear ``tf.image.resize`` to the model's side.
* an image file (predict, explain, the exported SavedModel): decoded to the same 8-bit gray by
  ``cxr_tf.io.imaging.decode_gray8`` (or its graph twin ``cxr_tf.serving.export.decode_gray8``) ->
  ``InputSpec.from_gray``: ``store`` (the build's resize to the records' side, in TensorFlow ops, and
  its rounding to 8 bits) -> ``to_model_side``.

So a file and its record give the same model input: the two paths differ only where TensorFlow's area
resize and OpenCV's ``INTER_AREA`` round a tie differently (one gray level, a few pixels in 10,000 when
shrinking). Repeating the build's resize in the graph keeps the exported model free of OpenCV.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import tensorflow as tf

from cxr_tf.io.imaging import RESIZE_MODES


@dataclass(frozen=True)
class InputSpec:
    """What a model takes and how an image becomes it.

    Attributes:
        image_size: the model's input side, pixels.
        stored_size: the side of the records it was trained on, pixels (``build_records --image-size``).
        resize: ``pad`` | ``squash`` | ``crop``, how the records were made square.
        channels: ``enhance`` | ``gray3`` | ``gray1``, the model's input layer (``cxr_tf.models.layers``).
    """

    image_size: int
    stored_size: int
    resize: str
    channels: str

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "InputSpec":
        """From a dict holding at least the four fields (an export's metadata)."""
        return cls(int(values["image_size"]), int(values["stored_size"]), str(values["resize"]),
                   str(values["channels"]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def from_gray(self, gray: tf.Tensor) -> tf.Tensor:
        """One model input from one decoded image.

        Args:
            gray: uint8 ``[H, W]`` or ``[H, W, 1]``, any size (``decode_gray8``'s output).

        Returns:
            float32 ``[image_size, image_size, 1]``, 0-255.
        """
        image = tf.convert_to_tensor(gray)
        if image.shape.rank == 2:
            image = image[..., tf.newaxis]
        return to_model_side(tf.cast(store(image, self.stored_size, self.resize), tf.float32), self.image_size)


def store(gray: tf.Tensor, size: int, mode: str) -> tf.Tensor:
    """The records' resize (``cxr_tf.io.imaging.resize``) in TensorFlow ops: uint8 ``[H, W, 1]`` -> uint8
    ``[size, size, 1]``.

    Same geometry (scale, rounding, centring) as ``imaging.resize``; ``tf.image.resize``'s ``area``
    method is OpenCV's ``INTER_AREA`` when shrinking (equal after rounding but for ties, one gray level).
    """
    RESIZE_MODES.check(mode, "resize")
    shape = tf.cast(tf.shape(gray)[:2], tf.float64)
    if mode == "squash":
        scaled = tf.constant([size, size])
    else:
        scale = (tf.reduce_min if mode == "pad" else tf.reduce_max)(size / shape)
        scaled = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 1)
    image = tf.image.resize(tf.cast(gray, tf.float32), scaled, method="area")
    image = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
    if mode == "pad":
        offset = (size - scaled) // 2
        image = tf.pad(image, [[offset[0], size - scaled[0] - offset[0]], [offset[1], size - scaled[1] - offset[1]],
                               [0, 0]])
    elif mode == "crop":
        offset = (scaled - size) // 2
        image = image[offset[0]:offset[0] + size, offset[1]:offset[1] + size]
    image.set_shape([size, size, 1])
    return image


def to_model_side(image: tf.Tensor, size: int) -> tf.Tensor:
    """A stored image to the model's side: float32 ``[H, W, 1]`` -> float32 ``[size, size, 1]`` (bilinear).

    The resize of every evaluation input (and of training inputs without augmentation).
    """
    out = tf.image.resize(image, [size, size])
    out.set_shape([size, size, image.shape[-1]])
    return out
