"""Training augmentation for radiographs: one affine warp (random resized crop, rotation, translation)
and photometric jitter (brightness, contrast, gamma), all stateless and driven by a per-example seed.

Random parameters are drawn (``draw_*``) separately from applying them (``warp``,
``photometric_table``), so a seed fixes every parameter and tests can apply chosen ones (MONAI's split of
randomisation and transform). The photometric jitter is a 256-entry table on gray levels, applied last
(after noise, as a display/exposure change of the acquired image) in the same gather as the enhancement
channels: no per-pixel ``pow``. Ranges are deliberately small: PA/AP films are taken in a standard
position, and large rotations or crops would move findings out of the lung fields they are defined by.

Speed: per example, the warp's ~60 scalar ops and its resampling run as ONE XLA-compiled call
(``random_warp``; pure TensorFlow ops, compiled in the graph, no Python). ``ImageProjectiveTransformV3``
cost ~13 ns per output pixel and the scalar ops ~5-10 us each in the tf.data executor; together they
were the augmentation's cost (``benchmarks/pipeline.py``). Moving the warp after batching does not help
on the CPU: the pixel work is the same and a batch-wide op delays the first batch.

Horizontal flips are OFF by default: a mirrored chest puts the heart on the right, i.e. shows
dextrocardia (situs inversus), an anatomy the classifier should not be taught is normal; it would also
swap the side of side-specific findings and of the L/R marker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentation.

    Args:
        area: (min, max) fraction of the image area kept by the random resized crop. Default (0.80, 1.0).
        aspect: (min, max) width/height ratio of the crop. Default (0.9, 1.1).
        rotation_degrees: rotation drawn uniformly in ±this. Default 7 (patient positioning).
        translation: shift drawn uniformly in ±this fraction of the side. Default 0.05.
        brightness: additive shift in ±this many gray levels (0-255 scale). Default 20.
        contrast: multiplicative factor around the image mean in [1 - c, 1 + c]. Default 0.2.
        gamma: (min, max) gamma of ``255 * (x / 255) ** gamma``, log-uniform. Default (0.8, 1.25).
        horizontal_flip: mirror half the images; off by default (see the module docstring).
    """

    area: tuple[float, float] = (0.80, 1.0)
    aspect: tuple[float, float] = (0.9, 1.1)
    rotation_degrees: float = 7.0
    translation: float = 0.05
    brightness: float = 20.0
    contrast: float = 0.2
    gamma: tuple[float, float] = (0.8, 1.25)
    horizontal_flip: bool = False


WARP_DRAWS = 8


def _uniforms(seed: tf.Tensor, count: int) -> tf.Tensor:
    # One random op for all parameters: each op costs ~10 us in the tf.data function executor, as much
    # as the arithmetic on a scalar.
    return tf.random.stateless_uniform([count], seed)


def _between(u: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return low + (high - low) * u


def _warp_parameters(u: tf.Tensor, config: AugmentConfig) -> dict[str, tf.Tensor]:
    area = _between(u[0], *config.area)
    aspect = tf.exp(_between(u[1], math.log(config.aspect[0]), math.log(config.aspect[1])))
    scale_x = tf.minimum(tf.sqrt(area * aspect), 1.0)
    scale_y = tf.minimum(tf.sqrt(area / aspect), 1.0)
    # The crop may sit anywhere inside the image; the translation then moves it by a few percent more.
    shift_x = (u[2] - 0.5) * (1.0 - scale_x) + _between(u[3], -1, 1) * config.translation
    shift_y = (u[4] - 0.5) * (1.0 - scale_y) + _between(u[5], -1, 1) * config.translation
    angle = _between(u[6], -1, 1) * math.radians(config.rotation_degrees)
    flip = tf.logical_and(config.horizontal_flip, u[7] < 0.5)
    return dict(scale_x=scale_x, scale_y=scale_y, shift_x=shift_x, shift_y=shift_y, angle=angle, flip=flip)


def draw_warp(seed: tf.Tensor, config: AugmentConfig) -> dict[str, tf.Tensor]:
    """Random warp parameters from an int ``[2]`` seed: crop ``scale_x/scale_y`` (fraction of the side),
    ``angle`` (radians), ``shift_x/shift_y`` (fraction of the side, crop offset plus translation), ``flip``."""
    return _warp_parameters(_uniforms(seed, WARP_DRAWS), config)


def random_warp(image: tf.Tensor, size: int, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """``warp(image, size, **draw_warp(seed, config))`` with the parameter arithmetic compiled by XLA
    together with the resampling: one call instead of ~60 scalar ops (~5 us each in tf.data's executor).

    Args:
        image: ``[H, W, C]``, float32 or the decoded uint8. size: output side, pixels.
        seed: int ``[2]``. config: the ranges.

    Returns:
        float32 ``[size, size, C]``.
    """
    return _random_warp(image, _uniforms(seed, WARP_DRAWS), size, config)


@tf.function(jit_compile=True)
def _random_warp(image: tf.Tensor, u: tf.Tensor, size: int, config: AugmentConfig) -> tf.Tensor:
    return warp(image, size, **_warp_parameters(u, config))


def affine_coefficients(height: tf.Tensor, width: tf.Tensor, size: int, scale_x: tf.Tensor,
                        scale_y: tf.Tensor, shift_x: tf.Tensor, shift_y: tf.Tensor, angle: tf.Tensor,
                        flip: tf.Tensor) -> tf.Tensor:
    """float32 ``[6]``: ``warp``'s output -> input pixel map of an ``height x width`` image, as the first 6
    coefficients of ``ImageProjectiveTransformV3`` (x_in = a0 x + a1 y + a2, y_in = a3 x + a4 y + a5)."""
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    # Output pixel centre (x + 0.5) / size - 0.5 in [-0.5, 0.5] is scaled to the crop, rotated and moved
    # to the crop centre.
    sx = tf.where(flip, -1.0, 1.0) * scale_x * width / size
    sy = scale_y * height / size
    ox, oy = sx * (0.5 - size / 2), sy * (0.5 - size / 2)
    cx, cy = width * (0.5 + shift_x) - 0.5, height * (0.5 + shift_y) - 0.5
    cos, sin = tf.cos(angle), tf.sin(angle)
    return tf.stack([cos * sx, -sin * sy, cx + cos * ox - sin * oy, sin * sx, cos * sy, cy + sin * ox + cos * oy])


def warp(image: tf.Tensor, size: int, scale_x: tf.Tensor, scale_y: tf.Tensor, shift_x: tf.Tensor,
         shift_y: tf.Tensor, angle: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
    """Crop, rotate, shift (and optionally mirror) ``image`` and resample it to ``size`` in one bilinear pass.

    Args:
        image: ``[H, W, C]``, float32 or the decoded uint8.
        size: output side, pixels.
        scale_x, scale_y: crop width/height as a fraction of the input side (1 = whole image).
        shift_x, shift_y: crop centre offset from the image centre, fraction of the side.
        angle: rotation about the crop centre, radians.
        flip: mirror left-right.

    Returns:
        float32 ``[size, size, C]``; pixels mapped from outside the image are 0 (black, like padding).
    """
    affine = affine_coefficients(tf.shape(image)[0], tf.shape(image)[1], size, scale_x, scale_y, shift_x,
                                 shift_y, angle, flip)
    out = _bilinear(image, affine, size)
    out.set_shape([size, size, image.shape[-1]])
    return out


@tf.function(jit_compile=True)
def _bilinear(image: tf.Tensor, affine: tf.Tensor, size: int) -> tf.Tensor:
    """``ImageProjectiveTransformV3``'s bilinear affine resampling (constant 0 outside), compiled by XLA.

    The kernel spends ~13 ns per output pixel (a generic generator unravelling a 4-D index per value);
    XLA fuses the coordinates, the four reads and the blend into one loop, ~3x faster on the CPU. The
    formula is the kernel's, where each of the four neighbours outside the image reads as 0: here the
    image gets a 1-pixel black border and the neighbours' indices are clamped into it.

    Args:
        image: ``[H, W, C]``, any real dtype. affine: float32 ``[6]``. size: output side (a Python int).

    Returns:
        float32 ``[size, size, C]``.
    """
    height, width, channels = tf.unstack(tf.shape(image))
    flat = tf.reshape(tf.pad(tf.cast(image, tf.float32), [[1, 1], [1, 1], [0, 0]]), [-1, channels])
    grid = tf.range(size, dtype=tf.float32)
    x_out, y_out = grid[tf.newaxis, :], grid[:, tf.newaxis]
    x = affine[0] * x_out + affine[1] * y_out + affine[2]
    y = affine[3] * x_out + affine[4] * y_out + affine[5]
    x0, y0 = tf.floor(x), tf.floor(y)
    x1, y1 = x0 + 1.0, y0 + 1.0

    def bordered(coordinate: tf.Tensor, side: tf.Tensor) -> tf.Tensor:
        # -1 and side are the black border; anything further out reads it too.
        return tf.cast(tf.clip_by_value(coordinate, -1.0, tf.cast(side, tf.float32)), tf.int32) + 1

    col0, col1 = bordered(x0, width), bordered(x1, width)
    row0, row1 = bordered(y0, height) * (width + 2), bordered(y1, height) * (width + 2)
    wx0, wx1 = (x1 - x)[..., tf.newaxis], (x - x0)[..., tf.newaxis]
    top = wx0 * tf.gather(flat, row0 + col0) + wx1 * tf.gather(flat, row0 + col1)
    bottom = wx0 * tf.gather(flat, row1 + col0) + wx1 * tf.gather(flat, row1 + col1)
    return (y1 - y)[..., tf.newaxis] * top + (y - y0)[..., tf.newaxis] * bottom


def draw_photometric(seed: tf.Tensor, config: AugmentConfig) -> dict[str, tf.Tensor]:
    """Random ``brightness`` (gray levels), ``contrast`` (factor) and ``gamma`` from an int ``[2]`` seed."""
    u = tf.unstack(_uniforms(seed, 3), num=3)
    return dict(
        brightness=_between(u[0], -config.brightness, config.brightness),
        contrast=_between(u[1], 1.0 - config.contrast, 1.0 + config.contrast),
        gamma=tf.exp(_between(u[2], math.log(config.gamma[0]), math.log(config.gamma[1]))),
    )


def photometric_table(hist: tf.Tensor, brightness: tf.Tensor, contrast: tf.Tensor, gamma: tf.Tensor) -> tf.Tensor:
    """Gamma, then contrast about the image mean, then brightness, as a table over gray levels.

    Args:
        hist: int32 ``[256]`` histogram of the image (gives the mean after gamma without a pixel pass).
        brightness: additive shift, gray levels. contrast: factor about the mean. gamma: exponent on 0-1.

    Returns:
        float32 ``[256]`` in 0-255: the new value of each gray level.
    """
    levels = tf.range(256, dtype=tf.float32)
    corrected = 255.0 * tf.pow(levels / 255.0, gamma)
    weights = tf.cast(hist, tf.float32)
    mean = tf.reduce_sum(weights * corrected) / tf.maximum(tf.reduce_sum(weights), 1.0)
    return tf.clip_by_value((corrected - mean) * contrast + mean + brightness, 0.0, 255.0)
