"""An image file -> the model's input: the records' resize repeated in TensorFlow, then the pipeline's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from cxr_tf.io import imaging
from cxr_tf.pipeline.model_input import InputSpec, store, to_model_side


def kermany_grays(fixtures) -> list[np.ndarray]:
    """Real radiographs of the fixtures: JPEGs of 1,000-2,000 px, none square."""
    paths = sorted((fixtures / "kermany" / "chest_xray").glob("*/*/*.jpeg"))[:6]
    assert paths, "Kermany fixtures missing"
    return [imaging.decode_gray8(p.read_bytes(), p.name) for p in paths]


@pytest.mark.parametrize("mode", ["pad", "squash", "crop"])
def test_store_gives_the_records_pixels_of_a_file(fixtures, mode):
    for gray in kermany_grays(fixtures):
        assert gray.shape[0] != gray.shape[1]
        expected = imaging.resize(gray, 96, mode)[0].astype(int)
        ours = store(tf.constant(gray[..., np.newaxis]), 96, mode).numpy()[..., 0].astype(int)
        difference = np.abs(ours - expected)
        # TensorFlow's area resize and OpenCV's INTER_AREA differ only where they round a tie.
        assert difference.max() <= 1 and (difference > 0).mean() < 0.005


def test_crop_centres_an_odd_overhang_as_imaging_does():
    gray = np.tile(np.arange(33, dtype=np.uint8)[np.newaxis] * 7, (32, 1))  # 33 wide: one column too many
    expected = imaging.resize(gray, 32, "crop")[0]
    np.testing.assert_array_equal(store(tf.constant(gray[..., np.newaxis]), 32, "crop").numpy()[..., 0], expected)


def test_from_gray_is_the_stored_image_resized_as_the_pipeline_resizes_it():
    rng = np.random.default_rng(0)
    gray = cv2.GaussianBlur(rng.integers(0, 256, (120, 80)).astype(np.uint8), (0, 0), 2)
    spec = InputSpec(image_size=48, stored_size=64, resize="pad", channels="enhance")
    stored = imaging.resize(gray, 64, "pad")[0].astype(np.float32)[..., np.newaxis]
    out = spec.from_gray(gray).numpy()
    assert out.shape == (48, 48, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out, to_model_side(tf.constant(stored), 48).numpy(), atol=1.0)
    assert InputSpec.from_dict({**spec.to_dict(), "classes": ["x"]}) == spec
