"""Augmentation: the warp is exact at identity, mirrors only when asked, and is fixed by its seed."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from cxr_tf.pipeline import augment

IDENTITY = dict(scale_x=1.0, scale_y=1.0, shift_x=0.0, shift_y=0.0, angle=0.0, flip=False)


def ramp(size=16):
    y, x = np.mgrid[0:size, 0:size]
    return tf.constant((x * 3 + y * 11 % 50)[..., None], tf.float32)


def test_identity_warp_returns_the_image():
    image = ramp()
    np.testing.assert_allclose(augment.warp(image, 16, **IDENTITY).numpy(), image.numpy(), atol=1e-3)


def test_flip_parameter_mirrors_left_right():
    image = ramp()
    out = augment.warp(image, 16, **{**IDENTITY, "flip": True})
    np.testing.assert_allclose(out.numpy(), image.numpy()[:, ::-1], atol=1e-3)


def test_quarter_turn_rotates_the_image():
    image = ramp()
    out = augment.warp(image, 16, **{**IDENTITY, "angle": np.pi / 2})
    np.testing.assert_allclose(out.numpy(), np.rot90(image.numpy(), k=1), atol=1e-3)


def test_horizontal_flip_is_off_by_default():
    seeds = [tf.constant([i, 7], tf.int64) for i in range(20)]
    assert not any(bool(augment.draw_warp(s, augment.AugmentConfig())["flip"]) for s in seeds)


def random_warp(image, seed):
    return augment.warp(image, 24, **augment.draw_warp(tf.constant(seed, tf.int64), augment.AugmentConfig()))


def test_same_seed_same_augmentation_other_seed_other():
    image = ramp(32)
    a, b, c = random_warp(image, [1, 2]), random_warp(image, [1, 2]), random_warp(image, [3, 2])
    assert a.shape == (24, 24, 1)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())


@pytest.mark.parametrize("seed", range(5))
def test_drawn_parameters_stay_in_their_ranges(seed):
    config = augment.AugmentConfig()
    warp = augment.draw_warp(tf.constant([seed, 0], tf.int64), config)
    photo = augment.draw_photometric(tf.constant([seed, 0], tf.int64), config)
    assert abs(float(warp["angle"])) <= np.radians(config.rotation_degrees)
    assert config.area[0] * 0.9 <= float(warp["scale_x"] * warp["scale_y"]) <= 1.0
    assert config.gamma[0] <= float(photo["gamma"]) <= config.gamma[1]
    assert abs(float(photo["brightness"])) <= config.brightness


def test_neutral_photometric_table_is_identity():
    hist = tf.ones([256], tf.int32)
    table = augment.photometric_table(hist, 0.0, 1.0, 1.0).numpy()
    np.testing.assert_allclose(table, np.arange(256), atol=1e-3)


@pytest.mark.parametrize("brightness, contrast, gamma", [(20.0, 1.2, 0.8), (-20.0, 0.8, 1.25), (100.0, 1.5, 0.5)])
def test_photometric_table_keeps_order_and_range(brightness, contrast, gamma):
    hist = tf.constant(np.random.default_rng(0).integers(0, 50, 256), tf.int32)
    table = augment.photometric_table(hist, brightness, contrast, gamma).numpy()
    assert table.min() >= 0 and table.max() <= 255
    assert (np.diff(table) >= 0).all(), "jitter must not swap dark and bright"


def test_gamma_below_one_brightens_mid_gray():
    hist = tf.ones([256], tf.int32)
    assert augment.photometric_table(hist, 0.0, 1.0, 0.8).numpy()[128] > 128


@pytest.mark.parametrize("seed", range(3))
def test_warp_resamples_as_image_projective_transform(seed):
    # The XLA-compiled resampling must be the kernel it replaces: same coordinates, bilinear weights and
    # black outside, up to float rounding of the coordinates (1e-4 of the gray range).
    image = tf.constant(np.random.default_rng(seed).integers(0, 256, (40, 48, 1)), tf.uint8)
    params = augment.draw_warp(tf.constant([seed, 5], tf.int64), augment.AugmentConfig(horizontal_flip=True))
    params["angle"] = tf.constant(0.4)  # 23 degrees: the output's corners come from outside the image
    transform = tf.concat([augment.affine_coefficients(40, 48, 32, **params), [0.0, 0.0]], axis=0)
    expected = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image, tf.float32)[tf.newaxis], transforms=transform[tf.newaxis],
        output_shape=tf.constant([32, 32]), fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    out = augment.warp(image, 32, **params).numpy()
    assert (out[[0, 0, -1, -1], [0, -1, 0, -1]] == 0).any(), "the test should reach outside the image"
    np.testing.assert_allclose(out, expected.numpy(), atol=0.03)


def test_random_warp_is_warp_of_the_drawn_parameters():
    image = ramp(32)
    seed = tf.constant([4, 2], tf.int64)
    config = augment.AugmentConfig()
    np.testing.assert_allclose(augment.random_warp(image, 24, seed, config).numpy(),
                               augment.warp(image, 24, **augment.draw_warp(seed, config)).numpy(), atol=1e-3)
