"""python -m cxr_tf.export: a SavedModel that serves encoded images without cxr_tf and agrees with
in-process prediction, a .keras export that reloads with Keras in safe mode once cxr_tf.models is imported,
metadata, atomic replacement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests import image_factory
from tests.conftest import PHANTOM_CLASSES
from tests.serving_util import (THRESHOLDS, encoded_variants, phantom_grays, reference_probabilities,
                                run_with_thresholds)

from cxr_tf import cli, export as export_cli
from cxr_tf.io import imaging
from cxr_tf.training import runs
from cxr_tf.errors import UserError
from cxr_tf.serving import export

@pytest.fixture(scope="module")
def run(phantom_run, tmp_path_factory) -> runs.Run:
    return run_with_thresholds(phantom_run, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def exported(run) -> dict[str, Path]:
    """The run exported in both formats by the command, into their default directories."""
    for fmt in export.FORMATS:
        assert cli.run(export_cli.main, ["--run", str(run.path), "--format", fmt]) == 0
    return {fmt: run.path / "export" / fmt for fmt in export.FORMATS}


# Run in a fresh interpreter in which importing cxr_tf fails, so nothing of it can be used.
CONSUMER = textwrap.dedent("""
    import json, sys
    sys.modules["cxr_tf"] = None
    import keras, tensorflow as tf

    savedmodel, keras_file, pixels_file, *images = sys.argv[1:]
    loaded = tf.saved_model.load(savedmodel)
    served = loaded.signatures["serving_default"](images=tf.constant([open(p, "rb").read() for p in images]))
    pixels = tf.constant(json.load(open(pixels_file)), tf.float32)
    print(json.dumps({
        "probabilities": served["probabilities"].numpy().tolist(),
        "labels": served["labels"].numpy().tolist(),
        "pixels_probabilities": loaded.signatures["pixels"](pixels=pixels)["probabilities"].numpy().tolist(),
        "metadata": json.loads(loaded.signatures["metadata"]()["json"].numpy()),
        "cxr_tf_modules": sorted(m for m in sys.modules if m.startswith("cxr_tf") and sys.modules[m]),
    }))
""")
# A fresh interpreter that imports cxr_tf (before Keras, the harder order: its layers register when Keras
# loads): the .keras files load in Keras' safe mode, without custom_objects.
KERAS_USER = textwrap.dedent("""
    import json, sys
    import cxr_tf
    import keras, tensorflow as tf

    pixels = tf.constant(json.load(open(sys.argv[1])), tf.float32)
    print(json.dumps({path: keras.ops.convert_to_numpy(keras.saving.load_model(path, safe_mode=True)(pixels)).tolist()
                      for path in sys.argv[2:]}))
""")


@pytest.fixture(scope="module")
def consumer(run, exported, phantom_records, tmp_path_factory) -> dict:
    """What a user without cxr_tf gets from the exports, for two phantoms in five encodings each."""
    tmp = tmp_path_factory.mktemp("consumer")
    files = []
    for index, gray in enumerate(phantom_grays(phantom_records, 2)):
        for name, data in encoded_variants(gray).items():
            files.append(tmp / f"{index}_{name}")
            files[-1].write_bytes(data)
    pixels = [run.input_spec.from_gray(imaging.decode_gray8(f.read_bytes())).numpy().tolist() for f in files[:3]]
    (tmp / "pixels.json").write_text(json.dumps(pixels))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", CONSUMER, str(exported["savedmodel"]),
                           str(exported["keras"] / export.KERAS_FILE), str(tmp / "pixels.json"), *map(str, files)],
                          capture_output=True, text=True, cwd=tmp, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    keras_files = [str(exported["keras"] / export.KERAS_FILE), str(run.model_file)]
    loaded = subprocess.run([sys.executable, "-c", KERAS_USER, str(tmp / "pixels.json"), *keras_files],
                            capture_output=True, text=True, cwd=tmp, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    logits = json.loads(loaded.stdout.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1]) | {
        "files": files, "pixels": np.array(pixels), "keras_logits": logits[keras_files[0]],
        "best_logits": logits[keras_files[1]]}


def test_metadata_falls_back_to_half_without_run_thresholds(phantom_run):
    meta = runs.load(phantom_run).model_metadata()
    assert meta.thresholds == {name: 0.5 for name in PHANTOM_CLASSES}
    assert meta.thresholds_from == "default 0.5"


@pytest.mark.slow  # with the other `consumer` tests: two exports and a fresh TensorFlow process
def test_savedmodel_serves_encoded_images_like_in_process_prediction(run, consumer):
    model = run.load_model()
    expected = np.stack([reference_probabilities(run, model, f.read_bytes()) for f in consumer["files"]])
    served = np.array(consumer["probabilities"])
    assert consumer["cxr_tf_modules"] == []
    assert served.shape == (len(consumer["files"]), len(PHANTOM_CLASSES))
    np.testing.assert_allclose(served, expected, atol=1e-5)
    # The phantoms differ, so equality above is not a constant output.
    assert np.ptp(served, axis=0).max() > 1e-3


@pytest.mark.slow
def test_savedmodel_labels_apply_the_run_thresholds(consumer):
    thresholds = np.array([THRESHOLDS[name] for name in PHANTOM_CLASSES])
    np.testing.assert_array_equal(consumer["labels"], np.array(consumer["probabilities"]) >= thresholds)


@pytest.mark.slow
def test_pixels_signature_and_keras_files_in_a_fresh_process_agree_with_the_run_model(run, consumer):
    model = run.load_model()
    logits = np.asarray(model(consumer["pixels"], training=False))
    assert consumer["pixels"].shape[-1] == 1  # the model takes the gray image and makes its channels
    np.testing.assert_allclose(consumer["keras_logits"], logits, atol=1e-5)
    np.testing.assert_allclose(consumer["best_logits"], logits, atol=1e-5)
    np.testing.assert_allclose(consumer["pixels_probabilities"], run.head.probabilities(logits), atol=1e-5)


@pytest.mark.slow
def test_metadata_round_trips_in_both_formats(run, exported, consumer):
    keras_meta = json.loads((exported["keras"] / export.METADATA_FILE).read_text())
    savedmodel_meta = json.loads((exported["savedmodel"] / export.SAVEDMODEL_METADATA).read_text())
    assert consumer["metadata"] == savedmodel_meta
    for meta in (keras_meta, savedmodel_meta):
        expected = run.model_metadata().to_dict()
        assert {key: meta[key] for key in expected} == expected
        assert meta["classes"] == PHANTOM_CLASSES and meta["thresholds"] == THRESHOLDS
        assert (meta["head"], meta["image_size"], meta["stored_size"], meta["channels"], meta["resize"]) == (
            "multilabel", 64, 64, "enhance", "pad")
        assert meta["thresholds_from"] == "run" and meta["source_run"] == str(run.path.resolve())


@pytest.mark.parametrize("variant", ["tinted.png", "alpha.png", "deep.png", "gray.jpg"])
def test_graph_decoding_gives_the_gray_levels_of_imaging(phantom_records, variant):
    import tensorflow as tf

    data = encoded_variants(phantom_grays(phantom_records, 1)[0])[variant]
    np.testing.assert_array_equal(export.decode_gray8(tf.constant(data)).numpy()[..., 0], imaging.decode_gray8(data))


def test_dicom_is_not_decodable_in_the_graph():
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError):
        export.decode_gray8(tf.constant(image_factory.dicom(image_factory.gradient().astype(np.uint16) * 16)))


def test_export_replaces_an_earlier_export(run, tmp_path):
    out = tmp_path / "model"
    export.export(run, "keras", out)
    (out / "stale.txt").write_text("from the earlier export")
    assert export.export(run, "keras", out) == out
    assert sorted(p.name for p in out.iterdir()) == [export.METADATA_FILE, export.KERAS_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_export_refuses_a_directory_that_is_not_an_export(run, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="--out"):
        export.export(run, "keras", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_failed_export_leaves_the_earlier_export_and_no_partial_one(run, tmp_path, monkeypatch):
    out = tmp_path / "model"
    export.export(run, "keras", out)
    before = (out / export.METADATA_FILE).read_text()

    def interrupted(model, meta, directory):
        (directory / export.METADATA_FILE).write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_write_keras", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export(run, "keras", out)
    with pytest.raises(KeyboardInterrupt):
        export.export(run, "keras", tmp_path / "new")
    assert (out / export.METADATA_FILE).read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


@pytest.mark.slow
def test_a_calibrated_run_exports_its_scaling_and_the_savedmodel_applies_it(phantom_run, tmp_path):
    import tensorflow as tf

    from cxr_tf.evaluation import calibration

    run = run_with_thresholds(phantom_run, tmp_path)
    fitted = {"method": "platt", "split": "val", "head": run.head.name,
              "classes": {c: {"slope": 0.5 + i, "intercept": -0.3 * i} for i, c in enumerate(run.classes)}}
    run.save_calibration(fitted)
    out = export.export(run, "savedmodel", tmp_path / "sm")
    loaded = tf.saved_model.load(str(out))
    meta = json.loads(loaded.signatures["metadata"]()["json"].numpy())
    assert meta["calibration"] == fitted
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    raw = np.asarray(run.head.probabilities(run.load_model()(pixels, training=False)))
    served = loaded.signatures["pixels"](pixels=tf.constant(pixels))
    np.testing.assert_allclose(served["probabilities"].numpy(), calibration.apply_numpy(raw, fitted, run.classes),
                               atol=1e-5)
    thresholds = np.array([THRESHOLDS[c] for c in run.classes])
    np.testing.assert_array_equal(served["labels"].numpy(), served["probabilities"].numpy() >= thresholds)
