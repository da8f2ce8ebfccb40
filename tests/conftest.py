"""Shared test fixtures. Tests build the smallest data that shows a behaviour."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# TensorFlow's C++ start-up chatter hides real failures in CI logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIXTURES = Path(__file__).parent / "fixtures"
# Classes a small CNN learns from 64 px phantoms within a few epochs.
PHANTOM_CLASSES = ["Cardiomegaly", "Effusion", "Edema"]


@pytest.fixture
def fixtures() -> Path:
    """The directory of small real samples copied from ../shared/data."""
    return FIXTURES


@pytest.fixture(scope="session")
def phantom_records(tmp_path_factory) -> Path:
    """500 easy NIH-style phantoms (with boxes) at 64 px, as records split train/val/test by patient."""
    from cxr_tf import build_records, cli, synth

    root = tmp_path_factory.mktemp("phantoms")
    assert cli.run(synth.main, ["--out", str(root / "ph"), "--n", "500", "--size", "64", "--difficulty", "0.3",
                                "--label-noise", "0", "--workers", "1"]) == 0
    assert cli.run(build_records.main, ["--dataset", "nih", "--labels", str(root / "ph" / "Data_Entry_2017.csv"),
                                        "--bbox", str(root / "ph" / "BBox_List_2017.csv"),
                                        "--images", str(root / "ph"), "--image-size", "64", "--workers", "1",
                                        "--out", str(root / "records")]) == 0
    return root / "records"


def phantom_fit_args(records: Path, out: Path, *extra: str) -> list[str]:
    """Flags of a small cnn5 run on ``phantom_records`` (64 px, enhance, weighted BCE, triangular CLR)."""
    return ["--records", str(records), "--model", "cnn5", "--weights", "none", "--classes", *PHANTOM_CLASSES,
            "--image-size", "64", "--enhance", "--batch-size", "16", "--lr", "3e-3", "--base-lr", "3e-4",
            "--step-size-epochs", "1", "--out", str(out), *extra]


@pytest.fixture(scope="session")
def phantom_run(phantom_records, tmp_path_factory) -> Path:
    """A finished 3-epoch cnn5 run on ``phantom_records`` (read-only: copy it before changing it)."""
    from cxr_tf import cli, fit

    run = tmp_path_factory.mktemp("phantom_run") / "run"
    assert cli.run(fit.main, phantom_fit_args(phantom_records, run, "--epochs", "3")) == 0
    return run
