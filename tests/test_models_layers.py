"""The model's input layers: the enhancement channels of ``pipeline.enhance`` for a whole batch, compiled by
XLA, under mixed precision, and saved with the model."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from cxr_tf.models.layers import CHANNELS, EnhancementChannels, GrayToRGB
from cxr_tf.pipeline.enhance import enhance


def kermany_batch(fixtures, size: int = 96) -> np.ndarray:
    """The real Kermany radiographs of the fixtures, squashed to ``size``, as uint8 [N, size, size, 1]."""
    paths = sorted((fixtures / "kermany" / "chest_xray").glob("*/*/*.jpeg"))
    assert paths, "Kermany fixtures missing"
    images = [cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (size, size), interpolation=cv2.INTER_AREA)
              for p in paths]
    return np.stack(images)[..., np.newaxis]


def random_batch() -> np.ndarray:
    """Four 24x20 images: uniform noise, a narrow band of levels, a constant image, a two-level image."""
    rng = np.random.default_rng(0)
    batch = np.stack([rng.integers(0, 256, (24, 20)), rng.integers(100, 110, (24, 20)),
                      np.full((24, 20), 77), np.where(rng.random((24, 20)) < 0.5, 3, 250)])
    return batch.astype(np.uint8)[..., np.newaxis]


def per_image_enhance(batch: np.ndarray) -> np.ndarray:
    return np.stack([enhance(tf.constant(image)).numpy() for image in batch]).astype(np.float32)


@pytest.mark.parametrize("source", ["random", "kermany"])
@pytest.mark.parametrize("jit", [False, True])
def test_enhancement_layer_equals_enhance_per_image(fixtures, source, jit):
    batch = random_batch() if source == "random" else kermany_batch(fixtures)
    layer = EnhancementChannels()
    call = tf.function(layer, jit_compile=True) if jit else layer
    # A variable, so that XLA compiles the layer rather than TensorFlow folding it into a constant.
    out = np.asarray(call(tf.Variable(batch.astype(np.float32))))
    assert out.shape == (*batch.shape[:3], 3) and out.dtype == np.float32
    assert np.abs(out - per_image_enhance(batch)).max() <= 1.0


def test_enhancement_layer_takes_uint8_and_rounds_float_levels_half_up():
    batch = random_batch()
    from_uint8 = EnhancementChannels()(tf.constant(batch)).numpy()
    np.testing.assert_array_equal(from_uint8, per_image_enhance(batch))
    shifted = EnhancementChannels()(tf.constant(batch.astype(np.float32) + 0.49)).numpy()
    np.testing.assert_array_equal(shifted, from_uint8)


def test_input_layers_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        enhancement, gray = EnhancementChannels(), GrayToRGB()
        batch = tf.constant(random_batch().astype(np.float32) + 0.3)
        out = enhancement(batch)
        assert out.dtype == tf.float32 and enhancement.compute_dtype == "float32"
        np.testing.assert_array_equal(out.numpy(), per_image_enhance(random_batch()))
        np.testing.assert_array_equal(gray(batch).numpy(), np.repeat(batch.numpy(), 3, axis=-1))
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("channels", CHANNELS.names())
def test_a_model_with_an_input_layer_reloads_in_safe_mode(tmp_path, channels):
    inputs = keras.Input((16, 16, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(CHANNELS.get(channels)(name="input_channels")(inputs)))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = random_batch()[:, :16, :16].astype(np.float32)
    assert type(again.get_layer("input_channels")) is CHANNELS.get(channels)
    np.testing.assert_allclose(again(x), model(x), atol=1e-6)


def test_enhancement_layer_compiles_from_shapes_alone():
    # XLA fixes every output length at compile time; a histogram sized by the data's maximum
    # (tf.math.bincount's default) compiles only when TensorFlow can fold the input into a constant.
    compiled = tf.function(EnhancementChannels(), jit_compile=True)
    hlo = compiled.experimental_get_compiler_ir(tf.TensorSpec([2, 8, 8, 1], tf.float32))(stage="hlo")
    assert "f32[2,8,8,3]" in hlo
