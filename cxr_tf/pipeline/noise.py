"""Radiographic noise models with a level parameter, shared by training augmentation and the
noise-robustness sweep of the evaluate command (``apply_noise(image, "poisson", 0.05, seed)``).

=========  ===========================================  =============  ===========
name       what it simulates                            level          clean level
=========  ===========================================  =============  ===========
poisson    quantum (photon) noise at a reduced dose     1/sqrt(quanta) 0
gaussian   electronic (read-out) noise                  sigma, gray    0
blur       detector/motion unsharpness (Gaussian PSF)   sigma, pixels  0
jpeg       lossy re-compression (PACS export, web)      JPEG quality   100
=========  ===========================================  =============  ===========

Stronger noise is a higher level except for ``jpeg``, where it is a lower quality; at its clean level
every model returns the image unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

from cxr_tf.errors import UserError
from cxr_tf.registry import Registry

NoiseFn = Callable[[tf.Tensor, float, tf.Tensor], tf.Tensor]


@dataclass(frozen=True)
class NoiseModel:
    """A noise model: ``apply(image float32 [H, W, C] 0-255, level, seed int [2]) -> same``."""

    apply: NoiseFn
    unit: str
    clean_level: float
    max_level: float


NOISES: Registry[NoiseModel] = Registry("noise")


def _poisson(image: tf.Tensor, level: float, seed: tf.Tensor) -> tf.Tensor:
    # A bright pixel is one the body attenuated: the detector counted few quanta there. With N quanta
    # reaching an unattenuated pixel (level = 1/sqrt(N), its relative noise; dose ~ 1/level^2) a pixel of
    # gray x counts Poisson(N * (1 - x/255)) quanta.
    quanta = 1.0 / level**2
    transmitted = 1.0 - tf.clip_by_value(image, 0.0, 255.0) / 255.0
    counts = tf.random.stateless_poisson(tf.shape(image), seed, lam=quanta * transmitted, dtype=tf.float32)
    return tf.clip_by_value(255.0 * (1.0 - counts / quanta), 0.0, 255.0)


def _gaussian(image: tf.Tensor, level: float, seed: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(image + tf.random.stateless_normal(tf.shape(image), seed, stddev=level), 0.0, 255.0)


def _blur(image: tf.Tensor, level: float, seed: tf.Tensor) -> tf.Tensor:
    del seed  # deterministic
    radius = max(1, math.ceil(3.0 * level))
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * (x / level) ** 2)
    kernel /= tf.reduce_sum(kernel)
    channels = image.shape[-1]
    # Separable: a [1, k] then a [k, 1] depthwise pass; reflected borders keep the edge brightness.
    padded = tf.pad(image[tf.newaxis], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    horizontal = tf.tile(tf.reshape(kernel, [1, -1, 1, 1]), [1, 1, channels, 1])
    vertical = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, channels, 1])
    out = tf.nn.depthwise_conv2d(padded, horizontal, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(out, vertical, [1, 1, 1, 1], "VALID")[0]


def _jpeg(image: tf.Tensor, level: float, seed: tf.Tensor) -> tf.Tensor:
    del seed  # deterministic
    encoded = tf.image.adjust_jpeg_quality(tf.clip_by_value(image, 0.0, 255.0) / 255.0, int(level))
    return tf.reshape(encoded * 255.0, tf.shape(image))


NOISES.register("poisson")(NoiseModel(_poisson, "1/sqrt(quanta per unattenuated pixel)", 0.0, 1.0))
NOISES.register("gaussian")(NoiseModel(_gaussian, "sigma, gray levels (0-255)", 0.0, 255.0))
NOISES.register("blur")(NoiseModel(_blur, "sigma, pixels", 0.0, 50.0))
NOISES.register("jpeg")(NoiseModel(_jpeg, "JPEG quality (1-100)", 100.0, 100.0))


def check_level(name: str, level: float) -> None:
    """Raise ``UserError`` when ``level`` is outside what noise ``name`` accepts."""
    model = NOISES.get(name)
    low, high = (1.0, 100.0) if name == "jpeg" else (0.0, model.max_level)
    if not low <= level <= high:
        raise UserError(f"noise {name}:{level}: the level ({model.unit}) must be in [{low:g}, {high:g}]")


def apply_noise(image: tf.Tensor, name: str, level: float, seed: tf.Tensor) -> tf.Tensor:
    """Noise ``name`` at ``level`` on float32 ``[H, W, C]`` 0-255; the clean level returns ``image`` itself.

    Args:
        image: float32 ``[H, W, C]`` in 0-255.
        name: a name in ``NOISES``.
        level: strength in the model's unit (table above).
        seed: int32/int64 ``[2]`` for the stateless random ops; same seed, same noise.

    Returns:
        float32 ``[H, W, C]`` in 0-255.
    """
    check_level(name, level)
    model = NOISES.get(name)
    if level == model.clean_level:
        return image
    return model.apply(image, float(level), seed)


def parse_noise(spec: str) -> tuple[str, float]:
    """``"poisson:0.05"`` -> ``("poisson", 0.05)``; a malformed spec or level is a ``UserError``."""
    name, sep, level = spec.partition(":")
    try:
        value = float(level)
    except ValueError:
        value = None
    if not sep or value is None:
        raise UserError(f"noise {spec!r}: expected NAME:LEVEL, e.g. poisson:0.05; names: {', '.join(NOISES)}")
    check_level(name.strip(), value)
    return name.strip(), value
