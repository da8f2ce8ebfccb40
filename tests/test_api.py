"""The Python API: cxr_tf.load(...).predict(...) -> DataFrame, cxr_tf.make_dataset; importing stays light."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import cxr_tf
from cxr_tf import cli, predict
from cxr_tf.errors import UserError
from tests import image_factory as make
from tests.serving_util import THRESHOLDS, phantom_grays, run_with_thresholds


def test_importing_cxr_tf_and_reaching_its_api_does_not_load_tensorflow():
    code = "import sys, cxr_tf; cxr_tf.load, cxr_tf.api; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


@pytest.mark.slow
def test_load_predicts_files_and_arrays_as_the_predict_command_does(phantom_run, phantom_records, tmp_path):
    run_with_thresholds(phantom_run, tmp_path)
    grays = phantom_grays(phantom_records, 2)
    for index, gray in enumerate(grays):
        (tmp_path / f"{index}.png").write_bytes(make.png(gray))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "command.csv"
    assert cli.run(predict.main, ["--model", str(tmp_path / "run"), str(tmp_path / "0.png"),
                                  str(tmp_path / "1.png"), "--format", "csv", "--out", str(out)]) == 0
    command = pd.read_csv(out)

    model = cxr_tf.load(tmp_path / "run")
    table = model.predict([tmp_path / "0.png", grays[1], tmp_path / "broken.png", np.zeros((2, 2, 2, 2))])

    assert model.classes == list(THRESHOLDS) and model.thresholds == THRESHOLDS
    assert table.columns.tolist() == command.columns.tolist()
    assert table["path"].tolist() == [str(tmp_path / "0.png"), "array 1", str(tmp_path / "broken.png"), "array 3"]
    probabilities = [f"prob_{name}" for name in THRESHOLDS]
    np.testing.assert_allclose(table.loc[:1, probabilities].to_numpy(float), command[probabilities].to_numpy(),
                               atol=1e-6)
    labels = [f"pred_{name}" for name in THRESHOLDS]
    assert (table.loc[:1, labels].to_numpy(int) == command[labels].to_numpy()).all()
    assert table["error"].isna().tolist() == [True, True, False, False]
    assert table.loc[2:, probabilities].isna().all().all() and table.loc[2:, labels].isna().all().all()
    assert isinstance(model.predict(tmp_path / "0.png"), pd.DataFrame)
    with pytest.raises(UserError, match="no such file"):
        model.predict(tmp_path / "absent.png")


def test_make_dataset_is_the_pipelines(phantom_records):
    from cxr_tf.pipeline import make_dataset

    assert cxr_tf.make_dataset is make_dataset
    images, labels, _ = next(iter(cxr_tf.make_dataset(str(phantom_records), "val", image_size=32, batch_size=4)))
    assert images.shape == (4, 32, 32, 1) and labels.shape[0] == 4  # one gray channel: the model makes the rest
