"""A run's summary and its model's metadata read back as typed values and written out byte for byte."""

from __future__ import annotations

import json

from cxr_tf.models.metadata import ModelMetadata
from cxr_tf.serving import export
from cxr_tf.training import runs
from cxr_tf.training.runs import RunSummary
from tests.conftest import PHANTOM_CLASSES


def test_run_summary_round_trips_byte_identical_and_counts_the_parameters(phantom_run):
    text = (phantom_run / runs.SUMMARY_FILE).read_text()
    summary = runs.load(phantom_run).summary()
    assert summary == RunSummary.load(phantom_run / runs.SUMMARY_FILE)
    assert summary.to_text() == text
    assert (summary.monitor, summary.epochs, summary.finished_earlier) == ("val_mean_auc", 3, False)
    assert summary.parameters == json.loads((phantom_run / "params.json").read_text())["train"]["total"] > 0


def test_exported_metadata_round_trips_byte_identical(phantom_run, tmp_path):
    out = export.export(runs.load(phantom_run), "keras", tmp_path / "model")
    text = (out / export.METADATA_FILE).read_text()
    meta = ModelMetadata.load(out / export.METADATA_FILE)
    assert meta.to_text() == text
    assert (meta.classes, meta.head.name, meta.input_spec.image_size) == (PHANTOM_CLASSES, "multilabel", 64)
    assert meta.exported_at is not None and meta.calibration is None


def test_metadata_read_from_a_run_has_no_export_time_and_writes_the_same_keys(phantom_run):
    meta = runs.load(phantom_run).model_metadata()
    assert meta.exported_at is None and "exported_at" not in meta.to_dict()
    assert ModelMetadata.from_dict(json.loads(meta.to_text())) == meta
