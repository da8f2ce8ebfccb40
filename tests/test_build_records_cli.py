"""python -m cxr_tf.build_records end to end: phantoms and real Kermany files in, records out; kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cxr_tf import build_records, cli, synth
from cxr_tf.records import info, output

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> dict[str, Path]:
    """Small phantom sets in the three layouts (48 px, 40 images each)."""
    root = tmp_path_factory.mktemp("phantoms")
    for style in ("nih", "chexpert", "folders"):
        assert cli.run(synth.main, ["--out", str(root / style), "--n", "40", "--size", "48",
                                    "--style", style, "--workers", "1"]) == 0
    return {style: root / style for style in ("nih", "chexpert", "folders")}


def build(*flags: str) -> int:
    return cli.run(build_records.main, [*flags, "--workers", "1", "--image-size", "32"])


@pytest.mark.parametrize("style, flags", [
    ("nih", ["--dataset", "nih", "--labels", "{d}/Data_Entry_2017.csv", "--bbox", "{d}/BBox_List_2017.csv",
             "--images", "{d}"]),
    ("chexpert", ["--dataset", "chexpert", "--labels", "{d}/CheXpert-v1.0-small",
                  "--images", "{d}/CheXpert-v1.0-small"]),
    ("folders", ["--dataset", "csv", "--images", "{d}"]),
])
def test_every_phantom_layout_builds_without_a_single_skipped_image(phantoms, tmp_path, style, flags):
    flags = [f.format(d=phantoms[style]) for f in flags]
    assert build(*flags, "--out", str(tmp_path / "records")) == 0
    content = info.load(str(tmp_path / "records"))
    assert content["skipped"]["total"] == 0
    assert sum(s["examples"] for s in content["splits"].values()) == 40
    assert set(content["splits"]) == {"train", "val", "test"}
    patients = {split: set() for split in content["splits"]}
    for split in content["splits"]:
        paths = info.shard_paths(str(tmp_path / "records"), content, split)
        patients[split] = {r["patient_id"] for r in output.read_records(paths, len(content["classes"]))}
    assert not (patients["train"] & patients["test"]) and not (patients["train"] & patients["val"])


def test_nih_phantom_boxes_reach_the_records(phantoms, tmp_path):
    d = phantoms["nih"]
    assert build("--dataset", "nih", "--labels", f"{d}/Data_Entry_2017.csv", "--bbox", f"{d}/BBox_List_2017.csv",
                 "--images", str(d), "--out", str(tmp_path / "r")) == 0
    content = info.load(str(tmp_path / "r"))
    records = [r for split in content["splits"]
               for r in output.read_records(info.shard_paths(str(tmp_path / "r"), content, split),
                                            len(content["classes"]))]
    boxes = [r for r in records if len(r["bbox/label"])]
    assert boxes, "the phantom set has boxed findings"
    for r in boxes:
        assert (r["bbox/xmin"] >= -0.5).all() and (r["bbox/xmax"] <= 32.5).all()
        for label in r["bbox/label"]:
            assert r["labels/state"][label] == 1  # a box is drawn only for a labelled finding


def test_real_kermany_jpegs_build_with_the_official_split_and_three_classes(fixtures, tmp_path):
    assert build("--dataset", "kermany", "--images", str(fixtures / "kermany"), "--classes", "3", "--split", "source",
                 "--out", str(tmp_path / "k")) == 0
    content = info.load(str(tmp_path / "k"))
    assert content["task"] == "multiclass" and list(content["splits"]) == ["val"]
    assert content["splits"]["val"]["examples"] == 16
    assert content["splits"]["val"]["counts"]["Bacteria"]["positive"] == 8


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "nhi", "--labels", "x.csv", "--images", ".", "--out", "o"], "did you mean 'nih'"),
    (["--dataset", "nih", "--images", ".", "--out", "o"], "--labels"),
    (["--dataset", "nih", "--labels", "x.csv", "--out", "o", "--resize", "zoom"], "--resize"),
    (["--dataset", "nih", "--labels", "x.csv", "--images", "."], "--out is required"),
    (["--dataset", "nih", "--labels", "missing.csv", "--images", ".", "--out", "o"], "missing.csv"),
    (["--dataset", "csv", "--images", ".", "--out", "o", "--image-size", "4"], "--image-size"),
])
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys, flags, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.run(build_records.main, flags) == 2
    err = capsys.readouterr().err.strip()
    assert message in err.splitlines()[-1] and err.splitlines()[-1].startswith("error: ")
    assert "Traceback" not in err


def test_strict_stops_at_the_first_bad_image_with_exit_1(phantoms, tmp_path, capsys):
    d = tmp_path / "folders"
    d.mkdir()
    for src in (phantoms["folders"]).rglob("*.png"):
        target = d / src.relative_to(phantoms["folders"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(src.read_bytes())
    broken = next(d.rglob("*.png"))
    broken.write_bytes(b"")
    assert build("--dataset", "csv", "--images", str(d), "--out", str(tmp_path / "r"), "--strict") == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and broken.name in last and "empty file" in last
    assert not (tmp_path / "r" / info.FILENAME).exists()


def test_beam_runner_without_apache_beam_is_one_clear_line(phantoms, tmp_path, capsys, monkeypatch):
    import cxr_tf.records

    monkeypatch.setitem(sys.modules, "apache_beam", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "cxr_tf.records.beam", raising=False)
    monkeypatch.delattr(cxr_tf.records, "beam", raising=False)
    assert build("--dataset", "csv", "--images", str(phantoms["folders"]), "--out", str(tmp_path / "r"),
                 "--runner", "beam") == 2
    assert "pip install -e .[beam]" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_build_rerun_with_the_same_arguments_ends_with_the_same_records(phantoms, tmp_path):
    d = phantoms["nih"]
    args = [sys.executable, "-m", "cxr_tf.build_records", "--dataset", "nih", "--labels",
            f"{d}/Data_Entry_2017.csv", "--images", str(d), "--image-size", "32", "--workers", "1",
            "--shard-mb", "0.005"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([*args, "--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen([*args, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    sidecars = killed / output.BUILD_DIR
    deadline = time.time() + 120
    while time.time() < deadline and len(list(sidecars.glob("*.tfrecord.json"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / info.FILENAME).exists(), "the build was killed before it finished"

    subprocess.run([*args, "--out", str(killed)], check=True, env=env, capture_output=True)
    whole, resumed = (json.loads((p / info.FILENAME).read_text()) for p in (tmp_path / "whole", killed))
    assert resumed["splits"] == whole["splits"] and resumed["skipped"] == whole["skipped"]
    assert not list(killed.glob("*.partial"))


def test_limit_and_jpeg_encoding_are_honoured(phantoms, tmp_path):
    assert build("--dataset", "csv", "--images", str(phantoms["folders"]), "--limit", "12", "--encoding", "jpeg",
                 "--resize", "squash", "--out", str(tmp_path / "r")) == 0
    content = info.load(str(tmp_path / "r"))
    assert sum(s["examples"] for s in content["splits"].values()) == 12
    assert (content["encoding"], content["resize"]) == ("jpeg", "squash")
    record = next(output.read_records(info.shard_paths(str(tmp_path / "r"), content, "train"),
                                      len(content["classes"])))
    assert record["image/format"] == b"jpeg" and record["image/encoded"][:2] == b"\xff\xd8"
