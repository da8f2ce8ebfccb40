"""fit under faults: several replicas with batches that do not divide the splits, a NaN loss, records
without a split, an --out that is a file, an empty build. Each is one line and loses nothing."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cxr_tf import build_records, cli, fit
from cxr_tf.records import info
from tests.records_util import write_records

CLASSES = ["Cardiomegaly", "Effusion"]
CPU_ONLY = dict(os.environ, CUDA_VISIBLE_DEVICES="-1", TF_CPP_MIN_LOG_LEVEL="3")


def tiny_records(tmp_path: Path, train: int = 13, val: int = 13) -> str:
    """``train`` and ``val`` 32 px images whose brightness tells their labels (both classes in both splits)."""
    rng = np.random.default_rng(0)
    records = ""
    for split, n in (("train", train), ("val", val)):
        states = [[i % 2, (i // 2) % 2] for i in range(n)]
        images = [np.clip(rng.normal(60 + 80 * s[0] + 40 * s[1], 20, (32, 32)), 0, 255).astype(np.uint8)
                  for s in states]
        records = write_records(tmp_path, images, states, CLASSES, split=split, shards=2)
    return records


def fit_args(records: str, out: Path, *extra: str) -> list[str]:
    return ["--records", records, "--model", "baseline_cnn", "--weights", "none", "--image-size", "32",
            "--channels", "gray1", "--no-augment", "--batch-size", "2", "--lr", "1e-3", "--base-lr", "1e-4",
            "--out", str(out), *extra]


def history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def one_line_error(capsys) -> str:
    """The error line of a command's stderr (log lines may come before it), checked to be the only one."""
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in err, err
    assert sum(line.startswith("error") for line in lines) == 1, err
    return lines[-1]


def test_padded_batches_hold_every_example_once_and_weigh_the_padding_zero():
    import tensorflow as tf

    from cxr_tf.pipeline.dataset import pad_batches

    ids = np.arange(13, dtype=np.float32)
    ds = tf.data.Dataset.from_tensor_slices((ids[:, None], ids[:, None] % 2, np.ones((13, 2), np.float32)))
    padded, batches = pad_batches(ds.batch(4), batch_size=4, examples=13)
    got = list(padded.as_numpy_iterator())

    assert batches == len(got) == 4 and all(len(images) == 4 for images, _, _ in got)
    weights = np.concatenate([w for _, _, w in got])
    real = weights[:, 0] > 0
    assert sorted(np.concatenate([x for x, _, _ in got])[real, 0]) == list(ids), "each example once"
    assert real.sum() == 13 and not weights[~real].any()
    # Keras divides a batch's loss by its slots: 16 slots for 13 examples, so real weights are 16/13.
    np.testing.assert_allclose(weights[real], 16 / 13)
    limited, steps = pad_batches(ds.batch(4), batch_size=4, examples=13, steps=2)
    assert steps == 2 and np.all(np.concatenate([w for _, _, w in limited.as_numpy_iterator()]) == 1.0)


@pytest.mark.slow
def test_two_replicas_train_on_uneven_splits_resume_after_kill_9_and_validate_each_example_once(tmp_path):
    # 13 train and 13 val images, 2 per replica on 2 replicas: both splits end with a batch of 1, which
    # crashed BatchNormalization of the second replica before; baseline_cnn has BatchNorm.
    records, run = tiny_records(tmp_path), tmp_path / "run"
    command = [sys.executable, "-m", "cxr_tf.fit", *fit_args(records, run, "--epochs", "4", "--steps-per-epoch",
                                                               "12", "--devices", "cpu:2", "--strategy", "mirrored")]
    process = subprocess.Popen(command, env=CPU_ONLY, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None and not (
            (run / "history.csv").exists() and len(history(run)) >= 1):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    _, err = process.communicate()
    done = len(history(run))
    assert 1 <= done < 4, f"killed after the first epoch and before the last: {err[-2000:]}"
    resumed = subprocess.run(command, env=CPU_ONLY, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = history(run)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3] and (run / "summary.json").exists()

    # The best epoch's validation metrics are those of best.keras on one device over the 13 val images.
    from cxr_tf import config
    from cxr_tf.training import runs
    from cxr_tf.training import fit as fit_lib
    from cxr_tf.training.fit_config import FitConfig

    best = max(rows, key=lambda r: float(r["val_mean_auc"]))
    values = dict(config.load_toml(run / "config.toml"), devices="", strategy="one_device")
    cfg = config.build(FitConfig, values, "test")
    setup = fit_lib.prepare(cfg)
    fit_lib.compile_phase(setup, cfg, cfg.lr, trainable_backbone=True)
    setup.model.set_weights(runs.load(run).load_model().get_weights())
    assert sum(len(batch[0]) for batch in setup.val_ds) == 13
    one_device = setup.model.evaluate(setup.val_ds, return_dict=True, verbose=0)
    for name in ("loss", "auc_Cardiomegaly", "auc_Effusion"):
        assert float(best["val_" + name]) == pytest.approx(one_device[name], rel=1e-5, abs=1e-6), name


def test_a_nan_loss_stops_the_run_naming_epoch_and_step_and_never_finishes_it(tmp_path, capsys):
    run = tmp_path / "run"
    code = cli.run(fit.main, fit_args(tiny_records(tmp_path), run, "--optimizer", "sgd", "--lr", "1e30",
                                      "--base-lr", "1e30", "--epochs", "2", "--steps-per-epoch", "4"))
    err = one_line_error(capsys)
    assert code == 1 and "the training loss became nan at epoch 1, step" in err
    assert not (run / "summary.json").exists() and not (run / "best.keras").exists()
    assert (run / "config.toml").exists(), "the run directory stays, to be re-run"


def test_records_without_a_val_split_are_named_in_one_line(tmp_path, capsys):
    records = write_records(tmp_path, [np.zeros((32, 32), np.uint8)] * 4, [[0, 1]] * 4, CLASSES, split="train")
    assert cli.run(fit.main, fit_args(records, tmp_path / "run")) == 2
    assert f"--records {records} has no split 'val'; its splits (examples): train (4)" in one_line_error(capsys)


def test_an_out_that_is_a_file_is_refused_and_left_alone(tmp_path, capsys):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    assert cli.run(fit.main, fit_args(tiny_records(tmp_path), taken / "run")) == 2
    assert "is a file, not a directory" in one_line_error(capsys)
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "labels.csv").write_text("path,label\na.png,Effusion\n")
    assert cli.run(build_records.main, ["--dataset", "csv", "--labels", str(tmp_path / "labels.csv"),
                                        "--path-col", "path", "--label-col", "label", "--images", str(images),
                                        "--out", str(taken)]) == 2
    assert f"--out {taken}: {taken} is a file" in one_line_error(capsys)
    assert taken.read_text() == "mine"


@pytest.mark.parametrize("rows, message", [
    ("", "nothing to build: the --labels of --dataset csv give no image row"),
    ("a.png,Effusion\nb.png,Edema\n", "no image could be stored: all 2 rows were skipped (2 missing file)"),
], ids=["header_only_csv", "every_image_missing"])
def test_an_empty_build_is_refused_and_never_marked_finished(tmp_path, capsys, rows, message):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("path,label\n" + rows)
    out = tmp_path / "records"
    assert cli.run(build_records.main, ["--dataset", "csv", "--labels", str(tmp_path / "labels.csv"),
                                        "--path-col", "path", "--label-col", "label", "--images",
                                        str(tmp_path / "images"), "--workers", "1", "--out", str(out)]) == 1
    assert message in one_line_error(capsys)
    assert not (out / "dataset.json").exists()


def test_a_build_rerun_with_the_corrected_images_folder_stores_the_images(tmp_path, capsys):
    # The label rows are the same both times; the images they name are not: the first build must not
    # be taken for "this build, already done" (nor its empty shards resumed).
    from tests import image_factory as make

    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{i}.png,{'Effusion' if i % 2 else 'Edema'}\n" for i in range(10)))
    wrong, right = tmp_path / "wrong", tmp_path / "right"
    wrong.mkdir()
    right.mkdir()
    for i in range(10):
        (right / f"{i}.png").write_bytes(make.png(make.gradient()))
    out = tmp_path / "records"
    args = ["--dataset", "csv", "--labels", str(labels), "--path-col", "path", "--label-col", "label",
            "--workers", "1", "--out", str(out)]
    assert cli.run(build_records.main, [*args, "--images", str(wrong)]) == 1
    assert "all 10 rows were skipped (10 missing file)" in one_line_error(capsys)
    assert cli.run(build_records.main, [*args, "--images", str(right), "--overwrite"]) == 0
    content = info.RecordsInfo.load(str(out))
    assert sum(split.examples for split in content.splits.values()) == 10
