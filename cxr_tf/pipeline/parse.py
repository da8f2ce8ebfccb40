"""Decoder: a serialized record -> a dict of the features preprocessing needs (Model Garden's decoder).

Parsing is kept apart from preprocessing so label policies and balancing run on the cheap fields
before any image is decoded, and images are decoded only for the examples that are used.
"""

from __future__ import annotations

import tensorflow as tf

from cxr_tf.records import features

IMAGE = "image"
STATE = "state"


def decode_example(serialized: tf.Tensor, num_classes: int) -> dict[str, tf.Tensor]:
    """``{"image": string scalar (encoded PNG/JPEG), "state": int64 [num_classes]}`` of one record."""
    spec = features.feature_spec(num_classes)
    parsed = tf.io.parse_single_example(
        serialized, {key: spec[key] for key in (features.IMAGE_KEY, features.LABELS_KEY)})
    return {IMAGE: parsed[features.IMAGE_KEY], STATE: parsed[features.LABELS_KEY]}


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """An 8-bit gray PNG or JPEG -> uint8 ``[H, W, 1]`` (the format is sniffed from the bytes)."""
    image = tf.io.decode_image(encoded, channels=1, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 1])
    return image
