"""python -m cxr_tf.fit on phantom records: it learns, writes its run directory, runs both phases, resumes."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import phantom_fit_args

from cxr_tf import cli, config, fit
from cxr_tf.models import MODELS
from cxr_tf.training.fit_config import FitConfig
from cxr_tf.training.losses import LOSSES
from cxr_tf.training.optimizers import OPTIMIZERS
from cxr_tf.training.schedules import SCHEDULES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def records(phantom_records) -> Path:
    return phantom_records


def fit_args(records: Path, out: Path, *extra: str) -> list[str]:
    return phantom_fit_args(records, out, *extra)


def history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_a_short_cpu_run_learns_and_writes_its_run_directory(records, tmp_path):
    run = tmp_path / "run"
    assert cli.run(fit.main, fit_args(records, run, "--epochs", "4")) == 0
    rows = history(run)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert max(float(r["val_mean_auc"]) for r in rows) > 0.7
    assert {"learning_rate", "val_auc_Cardiomegaly", "loss"} <= set(rows[0])
    for name in ("best.keras", "config.toml", "dataset.json", "params.json", "timing.json", "summary.json"):
        assert (run / name).exists(), name
    assert len(json.loads((run / "timing.json").read_text())["epochs"]) == 4
    assert any((run / "tb").rglob("events.out.tfevents*"))
    resolved = tomllib.loads((run / "config.toml").read_text())
    assert resolved["model"] == "cnn5" and resolved["enhance"] is True


@pytest.mark.slow
def test_frozen_backbone_then_fine_tuning_is_one_continuous_log(records, tmp_path):
    run = tmp_path / "two"
    assert cli.run(fit.main, fit_args(records, run, "--epochs", "1", "--freeze", "backbone",
                                      "--fine-tune-epochs", "1", "--fine-tune-lr", "1e-3",
                                      "--steps-per-epoch", "4")) == 0
    assert [int(r["epoch"]) for r in history(run)] == [0, 1]
    params = json.loads((run / "params.json").read_text())
    assert params["phase1"]["trainable"] < params["phase2"]["trainable"] == params["phase2"]["total"] - 1984


@pytest.mark.slow
def test_fine_tuning_restarts_the_cosine_schedule_and_anneals_it_over_its_own_epochs(records, tmp_path):
    run = tmp_path / "cosine"
    assert cli.run(fit.main, fit_args(records, run, "--epochs", "1", "--freeze", "backbone", "--schedule", "cosine",
                                      "--fine-tune-epochs", "2", "--fine-tune-lr", "1e-3",
                                      "--steps-per-epoch", "4")) == 0
    rows = history(run)
    # Logged at each epoch's end: the rate of its last step. Phase 2 has 8 steps; its last is step 7 of 8
    # of its own cosine (a horizon of the whole run's 12 steps would leave 3.7e-4 there).
    assert float(rows[1]["learning_rate"]) == pytest.approx(0.5e-3 * (1 + math.cos(math.pi * 3 / 8)), rel=1e-4)
    assert float(rows[2]["learning_rate"]) == pytest.approx(0.5e-3 * (1 + math.cos(math.pi * 7 / 8)), rel=1e-4)


def test_a_run_directory_with_other_settings_is_refused(records, tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.toml").write_text(config.to_toml(FitConfig(records=str(records), model="resnet18")))
    assert cli.run(fit.main, fit_args(records, run, "--epochs", "1")) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", sorted((REPO / "pipelines").glob("*.toml")), ids=lambda p: p.stem)
def test_every_recipe_is_a_valid_fit_config_naming_registered_things(recipe):
    cfg = config.build(FitConfig, config.load_toml(recipe), str(recipe))
    MODELS.get(cfg.model)
    LOSSES.get(cfg.loss)
    OPTIMIZERS.get(cfg.optimizer)
    SCHEDULES.get(cfg.schedule)


@pytest.mark.slow
def test_a_killed_run_rerun_with_the_same_command_resumes_and_finishes(records, tmp_path):
    run = tmp_path / "killed"
    command = [sys.executable, "-m", "cxr_tf.fit", *fit_args(records, run, "--epochs", "3", "--steps-per-epoch", "6")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not ((run / "history.csv").exists() and len(history(run)) >= 1):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(history(run))
    assert 1 <= done < 3, "killed after the first epoch and before the last"
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    assert [int(r["epoch"]) for r in history(run)] == list(range(3))
    # Once finished, the same command trains nothing again.
    again = subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=600)
    assert "finished earlier" in again.stdout and [int(r["epoch"]) for r in history(run)] == list(range(3))
