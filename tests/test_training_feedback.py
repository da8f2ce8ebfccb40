"""What a user sees while fit runs (progress bar or log lines) and what a run leaves in TensorBoard."""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cxr_tf import cli, config
from cxr_tf import explain as explain_cli
from cxr_tf import fit as fit_cli
from cxr_tf.evaluation import evaluate
from cxr_tf.training import callbacks as cb
from cxr_tf.training import fit as fit_lib
from cxr_tf.training import tensorboard
from cxr_tf.training.fit_config import FitConfig

STEPS, BATCH = 6, 4


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def fit_tiny(*callbacks: keras.callbacks.Callback, epochs: int = 2) -> None:
    """A 2-weight model on STEPS batches of BATCH random rows, with only ``callbacks`` reporting."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(STEPS * BATCH, 1)).astype("float32"), rng.integers(0, 2, (STEPS * BATCH, 1))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    model.fit(x, y.astype("float32"), batch_size=BATCH, epochs=epochs, verbose=0, callbacks=list(callbacks))


def tags(directory: Path) -> set[str]:
    events = EventAccumulator(str(directory), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    found = events.Tags()
    return set(found["scalars"]) | set(found["tensors"]) | set(found["images"])


def test_on_a_terminal_a_bar_shows_steps_eta_img_per_s_and_the_running_loss(caplog):
    caplog.set_level(logging.INFO, logger="cxr_tf")
    stream = Terminal()
    fit_tiny(cb.Progress(2, STEPS, BATCH, stream=stream))
    bar = stream.getvalue()
    assert "epoch 1/2" in bar and "epoch 2/2" in bar
    assert f"{STEPS}/{STEPS}" in bar and "<" in bar  # tqdm's "elapsed<remaining"
    assert "loss 0." in bar and "img/s" in bar
    epoch_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(epoch_lines) == 2 and all("step" not in line for line in epoch_lines)
    assert "ETA" in epoch_lines[0] and "img/s" in epoch_lines[1]


def test_off_a_terminal_log_lines_every_n_steps_give_img_per_s_and_eta(caplog):
    caplog.set_level(logging.INFO, logger="cxr_tf")
    stream = io.StringIO()
    fit_tiny(cb.Progress(2, STEPS, BATCH, every=2, stream=stream))
    assert stream.getvalue() == ""  # no bar drawn into a log file
    lines = [r.getMessage() for r in caplog.records if " step " in r.getMessage()]
    # Steps 2 and 4 of each epoch; the last step is the epoch line's.
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2 step 2/6", "epoch 1/2 step 4/6",
                                                      "epoch 2/2 step 2/6", "epoch 2/2 step 4/6"]
    assert all("img/s" in line and "ETA epoch" in line and "learning_rate 0.1" in line for line in lines)


def test_off_a_terminal_the_default_is_a_line_per_interval_not_per_step(caplog):
    caplog.set_level(logging.INFO, logger="cxr_tf")
    fit_tiny(cb.Progress(2, STEPS, BATCH, stream=io.StringIO()))  # a minute apart: none in a short fit
    assert not [r for r in caplog.records if " step " in r.getMessage()]
    assert len([r for r in caplog.records if r.getMessage().startswith("epoch ")]) == 2


def test_quiet_shows_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="cxr_tf")
    stream = Terminal()
    fit_tiny(cb.Progress(2, STEPS, BATCH, every=1, stream=stream))
    assert stream.getvalue() == "" and not caplog.records


def test_batch_scalars_are_the_mean_loss_of_the_last_n_steps_on_one_global_step_axis(tmp_path):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.25), loss="mse")
    callback = cb.BatchScalars(tmp_path, every=3, steps_per_epoch=STEPS)
    callback.set_model(model)
    callback.on_train_begin()
    step_losses = [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [6.0, 6.0, 6.0, 0.0, 0.0, 0.0]]
    for epoch, losses in enumerate(step_losses):
        callback.on_epoch_begin(epoch)
        for batch in range(STEPS):  # Keras' batch logs: the running mean of the epoch so far
            callback.on_train_batch_end(batch, {"loss": np.mean(losses[:batch + 1])})
    callback.on_train_end()
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    assert set(events.Tags()["tensors"]) == {"batch_loss", "batch_learning_rate"}
    assert [e.step for e in events.Tensors("batch_loss")] == [3, 6, 9, 12]
    losses = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("batch_loss")]
    np.testing.assert_allclose(losses, [2.0, 5.0, 6.0, 0.0])
    rates = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("batch_learning_rate")]
    np.testing.assert_allclose(rates, 0.25)


def test_hparams_become_strings_numbers_and_booleans():
    values = tensorboard.hparam_values({"lr": 1e-3, "classes": ["A", "B"], "clipnorm": None, "enhance": True})
    assert values == {"lr": 1e-3, "classes": "A B", "clipnorm": "none", "enhance": True}


def test_a_fit_run_writes_one_learning_rate_name_batch_scalars_and_hparams(phantom_run):
    train = tags(phantom_run / "tb" / "train")
    assert {"epoch_loss", "epoch_learning_rate", "epoch_mean_auc", "epoch_auc_Cardiomegaly",
            "batch_loss", "batch_learning_rate"} <= train
    assert "epoch_lr" not in train
    assert {"epoch_loss", "epoch_mean_auc", "epoch_auc_Edema"} <= tags(phantom_run / "tb" / "validation")
    assert {"_hparams_/session_start_info", "inputs/channel_0"} <= tags(phantom_run / "tb")


@pytest.mark.slow
def test_evaluate_and_explain_write_to_the_runs_tensorboard_log(phantom_run, phantom_records, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(phantom_run, run)
    shutil.rmtree(run / "tb" / "explain", ignore_errors=True)  # other tests' overlays on the shared run
    result = evaluate.evaluate(run, resamples=0).metrics
    test = EventAccumulator(str(run / "tb" / "test"), size_guidance={"tensors": 0})
    test.Reload()
    assert {"epoch_mean_auc", "epoch_auc_Cardiomegaly", "epoch_auc_Effusion", "epoch_auc_Edema"} == set(
        test.Tags()["tensors"])
    (point,) = test.Tensors("epoch_mean_auc")
    assert point.step == tensorboard.last_epoch(run) == 2
    assert float(tf.make_ndarray(point.tensor_proto)) == pytest.approx(result["mean_auc"])

    assert cli.run(explain_cli.main, ["--run", str(run), "--records", str(phantom_records), "--limit", "4",
                                      "--out", str(tmp_path / "cams")]) == 0
    overlays = tags(run / "tb" / "explain")
    assert overlays and all(tag.startswith("gradcam/") for tag in overlays)
    assert {f"gradcam/{p.stem}" for p in (tmp_path / "cams").glob("*.png")} == overlays


def test_changing_feedback_flags_does_not_stop_a_run_from_resuming(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(config.to_toml(FitConfig(records="records", out=str(run))))
    assert fit_lib.run_dir(FitConfig(records="records", out=str(run), log_every=5, tensorboard_every=0)) == run


def test_negative_feedback_intervals_are_one_line_errors(capsys):
    assert cli.run(fit_cli.main, ["--records", "records", "--log-every", "-1"]) == 2
    assert "--log-every -1: must be >= 0" in capsys.readouterr().err
