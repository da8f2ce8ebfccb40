"""Strategies under training: 2 logical CPUs match one device, two local workers train one run, bf16 and XLA.

Logical devices and ``TF_CONFIG`` are read when TensorFlow starts, so those runs are subprocesses, each with
a timeout: a hung collective fails the test instead of blocking CI.
"""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from cxr_tf import cli, fit
from cxr_tf.training import strategy
from tests.conftest import PHANTOM_CLASSES, phantom_fit_args

# No GPU probing in the subprocesses, and quiet C++ logs so a failure's traceback is what remains.
CPU_ONLY = dict(os.environ, CUDA_VISIBLE_DEVICES="-1", TF_CPP_MIN_LOG_LEVEL="3")
TIMEOUT = 240  # seconds; both tests finish in well under a minute on an idle 2-core machine

# Four SGD steps of a BatchNorm-free CNN on the same 64 phantoms, in the same order. BatchNorm is left out
# on purpose: each replica normalises its own 8 examples, not the global 16, so a BN model's updates
# differ by design, not by error. Plain SGD (no momentum) keeps a wrong gradient scale visible, e.g. a
# replica loss not divided by the number of replicas doubles the update; Adam would normalise it away.
PARITY_STEPS, GLOBAL_BATCH = 4, 16
PARITY_SCRIPT = """
import json, sys
import numpy as np
from cxr_tf.training import strategy
args = json.loads(sys.argv[1])
strategy.configure_devices(args["devices"])
import keras
from cxr_tf.pipeline import make_dataset
from cxr_tf.training.losses import LOSSES
from cxr_tf.training.optimizers import OPTIMIZERS

dist = strategy.make_strategy(args["strategy"])
keras.utils.set_random_seed(0)
data = make_dataset(args["records"], "train", classes=args["classes"], image_size=32, channels="gray3",
                    batch_size=args["per_replica"] * dist.num_replicas_in_sync, shuffle=False,
                    deterministic=True).take(args["steps"])
with dist.scope():
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(len(args["classes"]))])
    model.compile(optimizer=OPTIMIZERS.get("sgd")(learning_rate=0.5, momentum=0.0),
                  loss=LOSSES.get("weighted_bce")(positives=[10.0, 20.0, 30.0], negatives=[90.0, 80.0, 70.0]))
initial = [w.copy() for w in model.get_weights()]
losses = []
record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"])))
model.fit(data, epochs=1, callbacks=[record], verbose=0)
np.savez(args["out"], replicas=dist.num_replicas_in_sync, losses=np.array(losses),
         **{f"initial_{i}": w for i, w in enumerate(initial)},
         **{f"final_{i}": w for i, w in enumerate(model.get_weights())})
"""


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on localhost now (bound together, so the OS hands out distinct ones)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_together(commands: list[tuple[list[str], dict[str, str]]]) -> list[subprocess.CompletedProcess]:
    """Start every ``(argv, env)`` at once and wait for all; a process still running at ``TIMEOUT`` fails."""
    processes = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for argv, env in commands]
    done = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT)
            done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit within {TIMEOUT} s (a hung collective?): {process.args}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return done


def weights(npz: np.lib.npyio.NpzFile, prefix: str) -> list[np.ndarray]:
    return [npz[f"{prefix}_{i}"] for i in range(sum(k.startswith(prefix) for k in npz.files))]


@pytest.mark.slow
def test_two_logical_cpus_train_like_one_device_with_the_same_global_batch(phantom_records, tmp_path):
    runs = {"one_device": ("", "one_device", GLOBAL_BATCH), "mirrored": ("cpu:2", "mirrored", GLOBAL_BATCH // 2)}
    commands = []
    for name, (devices, strategy_name, per_replica) in runs.items():
        args = {"devices": devices, "strategy": strategy_name, "per_replica": per_replica, "steps": PARITY_STEPS,
                "records": str(phantom_records), "classes": PHANTOM_CLASSES, "out": str(tmp_path / f"{name}.npz")}
        commands.append(([sys.executable, "-c", PARITY_SCRIPT, json.dumps(args)], CPU_ONLY))
    for done in run_together(commands):
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = (np.load(tmp_path / f"{name}.npz") for name in runs)

    assert (int(one["replicas"]), int(two["replicas"])) == (1, 2)
    assert len(one["losses"]) == len(two["losses"]) == PARITY_STEPS
    for a, b in zip(weights(one, "initial"), weights(two, "initial")):
        np.testing.assert_array_equal(a, b)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(weights(one, "final"), weights(one, "initial")))
    assert moved > 1e-3, "the steps changed the weights"
    # Float32 sums in another order (per replica, then all-reduced): equal to ~1e-7 relative; 1e-5 is
    # far below what a wrong batch split or gradient scale gives (the size of `moved`).
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    for a, b in zip(weights(two, "final"), weights(one, "final")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_two_local_workers_train_one_run_that_only_the_chief_writes(phantom_records, tmp_path):
    run = tmp_path / "run"
    ports = free_ports(2)
    command = [sys.executable, "-m", "cxr_tf.fit",
               *phantom_fit_args(phantom_records, run, "--model", "baseline_cnn", "--image-size", "32",
                                 "--batch-size", "8", "--no-augment", "--epochs", "1", "--steps-per-epoch", "2",
                                 "--validation-steps", "2", "--strategy", "multiworker")]
    commands = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                     "task": {"type": "worker", "index": index}}
        # Each worker's own temp dir: the non-chief's scratch directory must be gone afterwards.
        (tmp_path / f"tmp{index}").mkdir()
        env = dict(CPU_ONLY, TF_CONFIG=json.dumps(tf_config), TMPDIR=str(tmp_path / f"tmp{index}"))
        commands.append((command, env))
    chief, worker = run_together(commands)

    assert chief.returncode == 0, chief.stderr[-3000:]
    assert worker.returncode == 0, worker.stderr[-3000:]
    # The same summary line on both: one synchronous run, metrics reduced over both workers.
    assert chief.stdout.strip().splitlines()[-1] == worker.stdout.strip().splitlines()[-1]
    expected = {"best.keras", "config.toml", "dataset.json", "history.csv", "params.json", "timing.json",
                "summary.json", "provenance.json", "tb"}
    assert {p.name for p in run.iterdir()} == expected
    with open(run / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1, "one row per epoch: a second writer would append its own"
    assert math.isfinite(float(rows[0]["val_mean_auc"]))
    for split in ("train", "validation"):
        # events.out.tfevents.<time>.<host>.<pid>.<n>.v2: every log file of the run from one process (in
        # tb/train Keras' writer and the per-batch scalars' writer, both the chief's).
        writers = {p.name.split(".")[-3] for p in (run / "tb" / split).glob("events.out.tfevents*")}
        assert len(writers) == 1, split
    assert not any((tmp_path / "tmp1").iterdir()), "the worker's scratch directory is removed"


@pytest.fixture
def float32_policy_after():
    """Mixed precision is a process-wide Keras policy: put float32 back for the tests that follow."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("flags, policy", [
    pytest.param(["--mixed-precision"], "mixed_bfloat16", id="mixed_precision"),
    pytest.param(["--jit-compile"], "float32", id="jit_compile", marks=pytest.mark.slow),  # XLA compiles ~20 s
])
def test_bfloat16_and_xla_runs_train_with_float32_logits(phantom_records, tmp_path, recwarn, flags, policy,
                                                         float32_policy_after):
    from cxr_tf.training import runs

    run = tmp_path / "run"
    assert cli.run(fit.main, phantom_fit_args(phantom_records, run, "--model", "baseline_cnn", "--image-size", "32",
                                              "--no-augment", "--epochs", "1", "--steps-per-epoch", "2",
                                              "--validation-steps", "1", *flags)) == 0
    # Keras falls back to plain graphs, with only a warning, when a layer does not support XLA.
    assert not [w for w in recwarn if "jit_compile" in str(w.message)]
    with open(run / "history.csv", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert math.isfinite(float(row["loss"])) and math.isfinite(float(row["val_loss"]))
    model = runs.load(run).load_model()
    assert model.get_layer("block1_conv").dtype_policy.name == policy
    # Cross-entropy on bfloat16 logits loses the small probabilities; the head stays float32.
    assert model.get_layer("head_logits").dtype_policy.name == "float32"
    assert model.output.dtype == "float32"


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
], ids=["no_cluster", "worker0", "worker1", "chief", "worker0_beside_a_chief"])
def test_the_chief_is_the_chief_task_or_else_worker_0(monkeypatch, tf_config, chief):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert strategy.is_chief() is chief


def test_a_non_chief_writes_to_a_scratch_directory_it_removes(monkeypatch, tmp_path):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "worker", "index": 1}}))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    run = tmp_path / "run"
    scratch = strategy.scratch_dir(run)
    assert scratch.is_dir() and scratch.parent == tmp_path / "tmp" and "worker1" in scratch.name
    strategy.remove_scratch(scratch, run)
    assert not scratch.exists()


def test_the_chief_writes_the_run_directory_itself(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    run = tmp_path / "run"
    run.mkdir()
    assert strategy.scratch_dir(run) == run
    strategy.remove_scratch(run, run)
    assert run.is_dir()


def test_a_worker_resumes_from_the_chiefs_backup_without_writing_to_it(tmp_path):
    import keras

    from cxr_tf.training.callbacks import ResumableBackup

    def tiny() -> keras.Model:
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        return model

    chief_model, chief_dir = tiny(), tmp_path / "run" / "backup" / "train"
    backup = ResumableBackup(chief_dir)
    backup.set_model(chief_model)
    backup.on_epoch_end(2)  # the chief finished epochs 0-2
    before = {p.name: p.read_bytes() for p in chief_dir.iterdir()}

    worker_model, scratch = tiny(), tmp_path / "scratch" / "backup" / "train"
    restored = []
    capture = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: restored.extend(w.copy() for w in worker_model.get_weights()))
    history = worker_model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=5, verbose=0,
                               callbacks=[ResumableBackup(scratch, restore_from=chief_dir), capture])

    assert len(history.history["loss"]) == 2, "epochs 3 and 4 only"
    for a, b in zip(restored, chief_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert {p.name: p.read_bytes() for p in chief_dir.iterdir()} == before
    assert not scratch.exists(), "a finished run removes its backup"
