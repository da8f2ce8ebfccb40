"""The thesis' "enhancement layers": an image, its histogram-equalized and its contrast-stretched version.

Both enhancements are 256-entry lookup tables derived from ONE 256-bin histogram of the image
(``tf.histogram_fixed_width`` -> cumulative sum -> table -> ``tf.gather``): two passes over the pixels
whatever the number of channels. Sorting each image for its percentiles instead was measured (issue 5,
2 CPU cores, 224 px) at 0.25x of a bare decode+resize ``tf.data`` pipeline, against ~0.85x for the
histogram; ``benchmarks/pipeline.py`` measures the current ratio.
"""

from __future__ import annotations

import tensorflow as tf

LEVELS = 256
# Percentiles of the linear stretch. 1 % / 99 % ignore the few extreme pixels that would otherwise set
# the range of a radiograph: burned-in L/R markers and text (saturated white, well under 1 % of the
# pixels) and collimator edges; everything between is mapped to the full 0-255 range. When an image is
# padded black over more than 1 % of its area (``resize="pad"`` of a non-square film) the low end is 0
# and only the high end is stretched, which keeps the padding black.
STRETCH_LOW_PERCENT = 1.0
STRETCH_HIGH_PERCENT = 99.0


def _flat_int(image: tf.Tensor) -> tf.Tensor:
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise TypeError(f"enhancement expects a uint8 image; received dtype={image.dtype.name}")
    return tf.reshape(tf.cast(image, tf.int32), [-1])


def _cdf(flat: tf.Tensor) -> tf.Tensor:
    """Cumulative 256-bin histogram, float32 [256]; the last entry is the pixel count."""
    return tf.cast(tf.cumsum(histogram(tf.cast(flat, tf.float32))), tf.float32)


def _equalize_table(cdf: tf.Tensor) -> tf.Tensor:
    """OpenCV's ``equalizeHist`` table (``imgproc/src/histogram.cpp``), float32 [..., 256] in 0-255.

    ``lut[v] = round((cdf[v] - cdf_min) * 255 / (N - cdf_min))`` where ``cdf_min`` is the count of the
    darkest gray level present, so that level maps to 0; a constant image is left unchanged. ``cdf``
    is float32 ``[..., 256]``: one table per leading index (one per image of a batch).
    """
    total = cdf[..., -1:]
    cdf_min = tf.reduce_min(tf.where(cdf > 0, cdf, total), axis=-1, keepdims=True)
    denominator = total - cdf_min
    table = tf.round(tf.math.divide_no_nan((cdf - cdf_min) * (LEVELS - 1), denominator))
    identity = tf.range(LEVELS, dtype=tf.float32)
    return tf.where(denominator > 0, tf.clip_by_value(table, 0.0, LEVELS - 1), identity)


def _stretch_table(cdf: tf.Tensor) -> tf.Tensor:
    """Linear map of [p1, p99] to [0, 255] (clipped), float32 [..., 256] from a cdf [..., 256]; flat
    images are left unchanged."""
    total = cdf[..., -1:]
    # The p-th percentile is the first gray level whose cumulative count reaches p % of the pixels.
    low = tf.reduce_sum(tf.cast(cdf < total * (STRETCH_LOW_PERCENT / 100.0), tf.float32), axis=-1, keepdims=True)
    high = tf.reduce_sum(tf.cast(cdf < total * (STRETCH_HIGH_PERCENT / 100.0), tf.float32), axis=-1, keepdims=True)
    identity = tf.range(LEVELS, dtype=tf.float32)
    stretched = tf.round((identity - low) * (LEVELS - 1) / tf.maximum(high - low, 1.0))
    return tf.where(high > low, tf.clip_by_value(stretched, 0.0, LEVELS - 1), identity)


def _apply(image: tf.Tensor, table: tf.Tensor) -> tf.Tensor:
    out = tf.gather(tf.cast(table, tf.uint8), tf.cast(image, tf.int32))
    return tf.reshape(out, tf.shape(image))


def equalize_histogram(image: tf.Tensor) -> tf.Tensor:
    """Histogram equalization identical to ``cv2.equalizeHist`` (within rounding, ±1 gray level).

    Args:
        image: uint8 ``[H, W]`` or ``[H, W, 1]``.

    Returns:
        uint8 tensor of the input's shape, 0-255.
    """
    return _apply(image, _equalize_table(_cdf(_flat_int(image))))


def contrast_stretch(image: tf.Tensor) -> tf.Tensor:
    """Percentile contrast stretch: the 1st percentile -> 0, the 99th -> 255, linear between, clipped.

    Args:
        image: uint8 ``[H, W]`` or ``[H, W, 1]``.

    Returns:
        uint8 tensor of the input's shape, 0-255; an image with one gray level is returned unchanged.
    """
    return _apply(image, _stretch_table(_cdf(_flat_int(image))))


def channel_tables(hist: tf.Tensor) -> tf.Tensor:
    """float32 ``[..., 256, 3]`` (identity, equalization, stretch) from int32 ``[..., 256]`` histograms.

    The pipeline composes these with other per-level maps (photometric jitter) and applies everything
    with one ``tf.gather``; ``cxr_tf.models.layers.EnhancementChannels`` builds one per image of a batch.
    """
    cdf = tf.cast(tf.cumsum(hist, axis=-1), tf.float32)
    identity = tf.broadcast_to(tf.range(LEVELS, dtype=tf.float32), tf.shape(cdf))
    return tf.stack([identity, _equalize_table(cdf), _stretch_table(cdf)], axis=-1)


def histogram(image: tf.Tensor) -> tf.Tensor:
    """int32 ``[256]`` counts of the gray levels of a float32 image (any shape, 0-255), each value
    rounded to the nearest level (half up) and values outside clamped to 0 or 255.

    ``tf.histogram_fixed_width`` over [-0.5, 255.5) bins the float image directly; measured in the
    pipeline it costs about a third of ``tf.math.bincount`` on the int32 levels.
    """
    return tf.histogram_fixed_width(image, [-0.5, LEVELS - 0.5], nbins=LEVELS, dtype=tf.int32)


def enhance(image: tf.Tensor) -> tf.Tensor:
    """The three enhancement channels (image, equalized, stretched) from one histogram and one gather.

    Args:
        image: uint8 ``[H, W]`` or ``[H, W, 1]``.

    Returns:
        uint8 ``[H, W, 3]``: channel 0 the image, 1 ``equalize_histogram``, 2 ``contrast_stretch``.

    Examples:
        >>> enhance(tf.zeros([4, 4, 1], tf.uint8)).shape
        TensorShape([4, 4, 3])
    """
    flat = _flat_int(image)
    out = tf.gather(tf.cast(channel_tables(histogram(tf.cast(flat, tf.float32))), tf.uint8), flat)
    shape = tf.shape(image)
    return tf.reshape(out, tf.stack([shape[0], shape[1], 3]))
