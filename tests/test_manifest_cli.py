"""``python -m cxr_tf.manifest``: summary JSON, human tables, --out round trip, errors, speed on full files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from cxr_tf import cli
from cxr_tf.datasets import DATASETS
from cxr_tf.datasets.manifest_io import read_manifest_csv
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.manifest import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.run(main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_json_is_exactly_the_issue_schema(fixtures, capsys):
    labels = fixtures / "labels" / "chexpert_train.csv"
    code, out, _ = run(["--dataset", "chexpert", "--labels", labels, "--summary", "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and list(summary) == ["rows", "patients", "classes"]
    expected = DATASETS.get("chexpert")(SourceConfig(dataset="chexpert", labels=labels)).summary()
    assert summary == expected
    assert set(summary["classes"]["Edema"]) == {"positive", "negative", "uncertain", "blank"}


def test_split_adds_per_split_rows_and_patients(fixtures, capsys):
    labels = fixtures / "labels" / "Data_Entry_2017_v2020.csv"
    code, out, _ = run(["--dataset", "nih", "--labels", labels, "--summary", "--json", "--split", "random"], capsys)
    splits = json.loads(out)["splits"]
    assert code == 0 and set(splits) == {"train", "val", "test"}
    assert sum(s["rows"] for s in splits.values()) == 200


def test_human_summary_shows_states_and_split_prevalence(fixtures, capsys):
    labels = fixtures / "labels" / "chexpert_train.csv"
    code, out, _ = run(["--dataset", "chexpert", "--labels", labels, "--split", "multilabel"], capsys)
    assert code == 0
    assert out.startswith("rows 193, patients 64")
    assert "uncertain" in out and "Pleural Effusion" in out and "%" in out


def test_out_writes_a_manifest_read_back_losslessly(fixtures, tmp_path, capsys):
    labels = fixtures / "labels" / "chexpert_train.csv"
    out_csv = tmp_path / "manifest.csv"
    code, _, _ = run(["--dataset", "chexpert", "--labels", labels, "--split", "labelset", "--out", out_csv], capsys)
    assert code == 0
    back = read_manifest_csv(out_csv)
    manifest = DATASETS.get("chexpert")(SourceConfig(dataset="chexpert", labels=labels))
    pd.testing.assert_frame_equal(back.drop(columns="split"), manifest.frame)
    assert back["Edema"].isna().sum() == manifest.frame["Edema"].isna().sum() > 0
    assert set(back["split"]) == {"train", "val", "test"}


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "nhi", "--labels", "x.csv"], "did you mean 'nih'"),
    (["--dataset", "nih", "--labels", "{chexpert}"], "no column 'Image Index'"),
    (["--dataset", "nih"], "needs --labels"),
    (["--labels", "x.csv"], "--dataset is required"),
])
def test_user_mistakes_exit_2_with_one_line(fixtures, capsys, argv, message):
    argv = [a.format(chexpert=fixtures / "labels" / "chexpert_train.csv") for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_manifest_command_does_not_import_tensorflow():
    code = ("import sys, cxr_tf.manifest, cxr_tf.datasets, cxr_tf.splits; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/labels")
@pytest.mark.parametrize("dataset, labels, rows, patients", [
    ("nih", "Data_Entry_2017_v2020.csv.gz", 112_120, 30_805),
    ("chexpert", "chexpert_train.csv.gz", 223_414, 64_540),
])
def test_full_label_file_summary_under_10_s_and_1_5_gb(dataset, labels, rows, patients):
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen([sys.executable, "-m", "cxr_tf.manifest", "--dataset", dataset,
                                  "--labels", str(SHARED / labels), "--summary", "--json"],
                                 stdout=out, stderr=subprocess.DEVNULL)
        # wait4 gives this child's own peak memory (RUSAGE_CHILDREN would be the largest of every child so
        # far, such as an earlier test's TensorFlow subprocess).
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        assert child.returncode == 0
        out.seek(0)
        summary = json.loads(out.read())
    peak_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
    assert (summary["rows"], summary["patients"]) == (rows, patients)
    assert seconds < 10 and peak_mb < 1536
