"""``python -m cxr_tf.manifest``: summary JSON, human tables, --out round trip, errors, speed on full files."""

from __future__ import annotations

import json
import subprocess
import sys
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
    code = ("import sys, cxr_tf.manifest, cxr_tf.datasets, cxr_tf.datasets.splits; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/labels")
@pytest.mark.parametrize("dataset, labels, rows, patients", [
    ("nih", "Data_Entry_2017_v2020.csv.gz", 112_120, 30_805),
    ("chexpert", "chexpert_train.csv.gz", 223_414, 64_540),
])
def test_full_label_file_summary_under_10_s_and_1_5_gb(dataset, labels, rows, patients):
    # The child reports its own high-water mark (VmHWM, this process image only): getrusage's maxrss
    # would include the pytest process it was forked from, which holds TensorFlow by then.
    code = ("import sys; from cxr_tf import cli, manifest; code = cli.run(manifest.main, sys.argv[1:]); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0], "
            "file=sys.stderr); sys.exit(code)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "--dataset", dataset, "--labels", str(SHARED / labels),
                           "--summary", "--json"], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    summary = json.loads(done.stdout)
    peak_mb = int(done.stderr.split()[-1]) / 1024  # kB
    assert (summary["rows"], summary["patients"]) == (rows, patients)
    assert seconds < 10 and peak_mb < 1536
