"""Serving parity: predict on an image file gives what evaluate gives on the file's record.

The records path resizes twice (OpenCV INTER_AREA to the stored side at build, bilinear to the model's
side in the pipeline); predict repeats both (``cxr_tf.pipeline.model_input``). Sources, records and
model input have three different sides here, so both resizes matter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import PHANTOM_CLASSES

from cxr_tf import build_records, cli, evaluate as evaluate_cli, fit, synth
from cxr_tf.serving import predict


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory) -> tuple[Path, Path]:
    """(image root, run): 96-px phantoms stored at 64 px, a cnn5 at 48 px trained a few steps, evaluated."""
    root = tmp_path_factory.mktemp("parity")
    images = root / "ph"
    assert cli.run(synth.main, ["--out", str(images), "--n", "160", "--size", "96", "--difficulty", "0.3",
                                "--workers", "1"]) == 0
    assert cli.run(build_records.main, ["--dataset", "nih", "--labels", str(images / "Data_Entry_2017.csv"),
                                        "--images", str(images), "--image-size", "64", "--workers", "1",
                                        "--out", str(root / "records")]) == 0
    run = root / "run"
    assert cli.run(fit.main, ["--records", str(root / "records"), "--model", "cnn5", "--weights", "none",
                              "--classes", *PHANTOM_CLASSES, "--image-size", "48", "--enhance",
                              "--batch-size", "16", "--epochs", "1", "--steps-per-epoch", "6",
                              "--out", str(run)]) == 0
    assert cli.run(evaluate_cli.main, ["--run", str(run), "--resamples", "0", "--threshold", "0.5"]) == 0
    return images, run


@pytest.mark.slow
def test_predict_on_source_files_equals_evaluate_on_their_records(parity_run):
    images, run = parity_run
    evaluated = pd.read_csv(run / "eval" / "test" / "predictions.csv")
    items = [predict.Item(path, images / path) for path in evaluated["path"]]
    predicted = predict.predict(predict.load_model(run), items, batch_size=32)
    assert all(p.error is None for p in predicted)
    served = np.array([[p.probabilities[name] for name in PHANTOM_CLASSES] for p in predicted])
    expected = evaluated[[f"prob_{name}" for name in PHANTOM_CLASSES]].to_numpy()
    assert np.abs(served - expected).max(axis=0).tolist() == pytest.approx([0.0] * 3, abs=1e-3)
    # Not a constant model: the agreement above is per image.
    assert np.ptp(expected, axis=0).max() > 1e-3
