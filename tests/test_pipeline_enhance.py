"""Enhancement channels: OpenCV-identical equalization on real radiographs, percentile stretch, stacking."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from cxr_tf.pipeline.enhance import contrast_stretch, enhance, equalize_histogram


def kermany(fixtures, size=None):
    paths = sorted((fixtures / "kermany" / "chest_xray" / "val").glob("*/*.jpeg"))
    assert paths, "Kermany fixtures missing"
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        yield cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) if size else image


def assert_matches_opencv(image):
    ours = equalize_histogram(tf.constant(image)).numpy().astype(int)
    difference = np.abs(ours - cv2.equalizeHist(image).astype(int))
    assert ours.shape == image.shape
    assert (difference <= 1).mean() >= 0.999


def test_equalize_histogram_matches_opencv_on_kermany_radiographs(fixtures):
    for image in kermany(fixtures, size=256):
        assert_matches_opencv(image)


def test_equalize_histogram_matches_opencv_at_full_size(fixtures):
    assert_matches_opencv(next(kermany(fixtures)))


def test_equalize_histogram_keeps_a_trailing_channel_and_a_constant_image():
    image = np.full((8, 8, 1), 77, np.uint8)
    np.testing.assert_array_equal(equalize_histogram(tf.constant(image)).numpy(), image)


def test_contrast_stretch_maps_1st_and_99th_percentiles_to_black_and_white():
    rng = np.random.default_rng(0)
    image = rng.normal(120, 10, (64, 64)).clip(0, 255).astype(np.uint8)
    low, high = np.percentile(image, [1, 99])
    out = contrast_stretch(tf.constant(image)).numpy()
    assert (out[image < low] == 0).all() and (out[image > high] == 255).all()
    order = np.argsort(image, axis=None, kind="stable")
    assert (np.diff(out.ravel()[order].astype(int)) >= 0).all(), "stretch must preserve gray-level order"


def test_contrast_stretch_leaves_a_flat_image_unchanged():
    image = np.full((8, 8), 200, np.uint8)
    np.testing.assert_array_equal(contrast_stretch(tf.constant(image)).numpy(), image)


@pytest.mark.parametrize("shape", [(12, 10), (12, 10, 1)])
def test_enhance_stacks_image_equalized_and_stretched(shape):
    image = np.random.default_rng(1).integers(40, 90, shape, dtype=np.uint8)
    out = enhance(tf.constant(image)).numpy()
    assert out.shape == (12, 10, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], image.reshape(12, 10))
    np.testing.assert_array_equal(out[..., 1], equalize_histogram(tf.constant(image)).numpy().reshape(12, 10))
    np.testing.assert_array_equal(out[..., 2], contrast_stretch(tf.constant(image)).numpy().reshape(12, 10))


def test_enhancement_refuses_float_images():
    with pytest.raises(TypeError, match="uint8"):
        enhance(tf.zeros([4, 4]))
