"""Radiographic noise models: identity at the clean level, monotone in the level, seeded, parsed from specs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from cxr_tf.errors import UserError
from cxr_tf.pipeline.noise import NOISES, apply_noise, parse_noise

# Levels from clean to strong for each model (JPEG: a lower quality is stronger).
LEVELS = {"poisson": [0.0, 0.02, 0.1], "gaussian": [0.0, 2.0, 20.0], "blur": [0.0, 0.8, 3.0], "jpeg": [100, 60, 10]}
SEED = tf.constant([4, 2], tf.int64)


def phantom():
    y, x = np.mgrid[0:48, 0:48]
    image = 128 + 80 * np.sin(x / 3.0) * np.cos(y / 5.0)
    return tf.constant(image[..., None], tf.float32)


def test_every_registered_noise_has_levels_here():
    assert sorted(LEVELS) == NOISES.names()


@pytest.mark.parametrize("name", sorted(LEVELS))
def test_clean_level_is_identity(name):
    image = phantom()
    np.testing.assert_array_equal(apply_noise(image, name, NOISES.get(name).clean_level, SEED).numpy(), image.numpy())


@pytest.mark.parametrize("name", sorted(LEVELS))
def test_stronger_level_gives_larger_error(name):
    image = phantom()
    errors = [float(tf.reduce_mean(tf.abs(apply_noise(image, name, level, SEED) - image))) for level in LEVELS[name]]
    assert errors[0] == 0 and errors[0] < errors[1] < errors[2]


@pytest.mark.parametrize("name", sorted(LEVELS))
def test_noise_keeps_shape_and_range_and_follows_the_seed(name):
    image = phantom()
    a = apply_noise(image, name, LEVELS[name][-1], SEED).numpy()
    b = apply_noise(image, name, LEVELS[name][-1], SEED).numpy()
    assert a.shape == (48, 48, 1) and a.min() >= 0 and a.max() <= 255
    np.testing.assert_array_equal(a, b)


def test_parse_noise_spec():
    assert parse_noise("poisson:0.05") == ("poisson", 0.05)
    assert parse_noise("jpeg:30") == ("jpeg", 30.0)


@pytest.mark.parametrize("spec, message", [
    ("poisson", "NAME:LEVEL"), ("blur:wide", "NAME:LEVEL"), ("speckle:1", "did you mean|valid"),
    ("jpeg:0", r"\[1, 100\]"), ("gaussian:-1", r"\[0, 255\]"),
])
def test_bad_noise_spec_is_a_user_error(spec, message):
    with pytest.raises(UserError, match=message):
        parse_noise(spec)
