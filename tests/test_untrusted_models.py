"""Model files and exports under faults: unsafe or foreign .keras files, killed exports, hostile serving input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from cxr_tf import cli, predict as predict_cli
from cxr_tf.io import imaging
from cxr_tf.models.metadata import ModelMetadata
from cxr_tf.training import runs
from cxr_tf.serving import export
from tests import image_factory as make

META = {"format": 2, "classes": ["A", "B"], "head": "multilabel", "thresholds": {"A": 0.5, "B": 0.5},
        "thresholds_from": "run", "image_size": 32, "stored_size": 32, "resize": "pad", "channels": "enhance",
        "model": "tiny", "source_run": "/nowhere", "cxr_tf_version": "0", "calibration": None}


def tiny_model(lambda_layer: bool = False) -> keras.Model:
    """A conv + BatchNormalization net on [B, 32, 32, 1] 0-255 gray images (the models' input), two logits."""
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inputs) if lambda_layer else inputs
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(x))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    directory = tmp_path_factory.mktemp("savedmodel")
    export._write_savedmodel(tiny_model(), ModelMetadata.from_dict(META), directory)
    return tf.saved_model.load(str(directory)).signatures["serving_default"]


def keras_export(directory: Path, model_bytes: bytes | None = None) -> Path:
    directory.mkdir(parents=True)
    if model_bytes is None:
        tiny_model(lambda_layer=True).save(directory / export.KERAS_FILE)
    else:
        (directory / export.KERAS_FILE).write_bytes(model_bytes)
    (directory / export.METADATA_FILE).write_text(json.dumps(META))
    return directory / export.KERAS_FILE


@pytest.mark.parametrize("model_bytes, message", [
    pytest.param(None, "refused: this file contains arbitrary code (Lambda); only load models you trust",
                 id="lambda-layer"),
    pytest.param(b"not a zip\n", "not a Keras model file", id="not-keras"),
])
def test_predict_with_an_unsafe_or_foreign_keras_file_is_one_line_and_exit_2(tmp_path, capsys, model_bytes,
                                                                             message):
    model = keras_export(tmp_path / "export", model_bytes)
    (tmp_path / "a.png").write_bytes(make.png(make.gradient()))
    assert cli.run(predict_cli.main, ["--model", str(model), str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"error: --model {model}: {message}")
    assert "Traceback" not in err


def test_an_empty_batch_gives_empty_outputs_from_the_serving_signature(serving):
    outputs = serving(images=tf.constant([], tf.string))
    assert outputs["probabilities"].shape == (0, 2) and outputs["labels"].shape == (0, 2)
    one = serving(images=tf.constant([make.png(make.gradient())]))
    assert one["probabilities"].shape == (1, 2)


@pytest.mark.parametrize("encode", [
    pytest.param(lambda image: cv2.imencode(".png", image)[1].tobytes(), id="png"),
    pytest.param(lambda image: cv2.imencode(".jpg", image)[1].tobytes(), id="jpeg"),
])
def test_the_serving_signature_refuses_an_image_over_the_pixel_limit_from_its_header(serving, encode):
    side = 8193  # just over imaging.MAX_PIXELS = 8192 x 8192: a few MB to decode, refused before
    data = encode(np.zeros((side, side), np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"image too large \\(over {imaging.MAX_PIXELS} pixels"):
        serving(images=tf.constant([data]))


def test_the_next_export_removes_what_a_killed_export_left(phantom_run, tmp_path):
    out = tmp_path / "exports" / "keras"
    left = [tmp_path / "exports" / ".keras.partial-x1y2", tmp_path / "exports" / ".keras.old-z3"]
    for folder in left:
        folder.mkdir(parents=True)
        (folder / export.KERAS_FILE).write_bytes(b"half")
    other = tmp_path / "exports" / ".savedmodel.partial-a1"  # another destination's: not ours to remove
    other.mkdir()
    export.export(runs.load(phantom_run), "keras", out)
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == [".savedmodel.partial-a1", "keras"]
    assert (out / export.METADATA_FILE).is_file()
