"""``python -m cxr_tf.synth``: flags, layouts, determinism."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import pandas as pd
import pytest

from cxr_tf import cli, synth
from cxr_tf.phantoms import writers


def _run(out: Path, *flags: str) -> int:
    return cli.run(synth.main, ["--out", str(out), "--n", "24", "--size", "48", "--workers", "1", *flags])


def _hashes(root: Path) -> dict[str, str]:
    """Digest of every file but the saved config (which records --out and --workers)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "synth.toml"}


@pytest.mark.parametrize("flags", [
    ["--n", "0"], ["--size", "8"], ["--difficulty", "1.5"], ["--workers", "-1"], ["--label-noise", "-0.1"],
    ["--prevalence", "Efusion=0.2"], ["--prevalence", "Effusion"], ["--findings", "Fracture"],
    ["--style", "folders", "--prevalence", "Effusion=0.7", "Pneumonia=0.6"], ["--style", "dicom"],
])
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, flags):
    assert _run(tmp_path / "out", *flags) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("style", ["nih", "chexpert", "folders"])
def test_same_seed_gives_identical_files_whatever_the_workers(tmp_path, style):
    assert _run(tmp_path / "a", "--style", style) == 0
    assert _run(tmp_path / "b", "--style", style, "--workers", "2") == 0
    assert _run(tmp_path / "c", "--style", style, "--seed", "1") == 0
    first = _hashes(tmp_path / "a")
    assert len([p for p in first if p.endswith(".png")]) == 24
    assert first == _hashes(tmp_path / "b")
    assert first != _hashes(tmp_path / "c")


def test_nih_output_lists_every_image_with_its_patient(tmp_path):
    assert _run(tmp_path, "--n", "40", "--label-noise", "0") == 0
    entries = pd.read_csv(tmp_path / "Data_Entry_2017.csv")
    assert list(entries.columns)[:7] == ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
                                         "Patient Gender", "View Position"]
    assert len(entries) == 40
    for name in entries["Image Index"]:
        image = cv2.imread(str(tmp_path / "images_001" / "images" / name), cv2.IMREAD_UNCHANGED)
        assert image.shape == (48, 48) and image.dtype == "uint8"
    assert entries.groupby("Patient ID").size().between(1, 4).all()
    assert (entries["Image Index"] == entries.apply(
        lambda r: f"{r['Patient ID']:08d}_{r['Follow-up #']:03d}.png", axis=1)).all()
    header = (tmp_path / "BBox_List_2017.csv").read_text().splitlines()[0]
    assert header == "Image Index,Finding Label,Bbox [x,y,w,h],,,"
    boxes = pd.read_csv(tmp_path / "BBox_List_2017.csv", header=None, skiprows=1)  # rows: name, label, x, y, w, h
    assert len(boxes) > 0 and boxes.shape[1] == 6
    boxes.columns = ["Image Index", "Finding Label", "x", "y", "w", "h"]
    x, y, w, h = boxes["x"], boxes["y"], boxes["w"], boxes["h"]
    assert ((x >= 0) & (y >= 0) & (x + w <= 48) & (y + h <= 48)).all()
    labelled = dict(zip(entries["Image Index"], entries["Finding Labels"]))
    for name, label in zip(boxes["Image Index"], boxes["Finding Label"]):
        assert label.replace("Infiltrate", "Infiltration") in labelled[name].split("|")


def test_chexpert_output_splits_patients_into_train_and_valid(tmp_path):
    assert _run(tmp_path, "--style", "chexpert", "--n", "60", "--valid-share", "0.3") == 0
    root = tmp_path / "CheXpert-v1.0-small"
    train, valid = pd.read_csv(root / "train.csv"), pd.read_csv(root / "valid.csv")
    assert len(train) + len(valid) == 60 and len(valid) > 0
    assert list(train.columns) == writers.CHEXPERT_HEADER.split(",")
    for path in pd.concat([train, valid])["Path"]:
        assert (tmp_path / path).is_file()
    patient = lambda frame: set(frame["Path"].str.split("/").str[2])  # noqa: E731
    assert not patient(train) & patient(valid)
    assert set(train["Cardiomegaly"].dropna().unique()) <= {1.0, 0.0, -1.0}


def test_folders_output_has_one_class_per_image(tmp_path):
    assert _run(tmp_path, "--style", "folders", "--n", "30") == 0
    classes = {p.name for p in tmp_path.iterdir() if p.is_dir()}
    assert classes <= {"Normal", *writers.FOLDER_FINDINGS} and "Normal" in classes
    assert len(list(tmp_path.glob("*/*.png"))) == 30


def test_resolved_config_is_saved_for_rerun(tmp_path):
    assert _run(tmp_path, "--difficulty", "0.7") == 0
    saved = (tmp_path / "synth.toml").read_text()
    assert "difficulty = 0.7" in saved and 'style = "nih"' in saved


def test_rerun_into_the_same_directory_needs_the_same_run(tmp_path, capsys):
    assert _run(tmp_path / "a") == 0
    before = _hashes(tmp_path / "a")
    (tmp_path / "a" / "images_001" / "images" / ".00000009_000.png.77.partial").write_bytes(b"half a png")
    assert _run(tmp_path / "a", "--workers", "2") == 0
    assert _hashes(tmp_path / "a") == before
    assert _run(tmp_path / "a", "--seed", "5") == 2
    assert "holds another synth run" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    assert _run(tmp_path / "b") == 2
    assert "is not empty" in capsys.readouterr().err


def test_module_runs_as_a_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cxr_tf.synth", "--out", str(tmp_path), "--n", "4", "--size", "32",
                           "--workers", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote 4 images" in done.stdout and "images/s" in done.stdout
