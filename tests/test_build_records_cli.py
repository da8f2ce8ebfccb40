"""python -m cxr_tf.build_records end to end: phantoms and real Kermany files in, records out; kill and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
    content = info.RecordsInfo.load(str(tmp_path / "records"))
    assert content.skipped.total == 0
    assert sum(s.examples for s in content.splits.values()) == 40
    assert set(content.splits) == {"train", "val", "test"}
    patients = {split: set() for split in content.splits}
    for split in content.splits:
        paths = info.shard_paths(str(tmp_path / "records"), content, split)
        patients[split] = {r["patient_id"] for r in output.read_records(paths, len(content.classes))}
    assert not (patients["train"] & patients["test"]) and not (patients["train"] & patients["val"])


def test_nih_phantom_boxes_reach_the_records(phantoms, tmp_path):
    d = phantoms["nih"]
    assert build("--dataset", "nih", "--labels", f"{d}/Data_Entry_2017.csv", "--bbox", f"{d}/BBox_List_2017.csv",
                 "--images", str(d), "--out", str(tmp_path / "r")) == 0
    content = info.RecordsInfo.load(str(tmp_path / "r"))
    records = [r for split in content.splits
               for r in output.read_records(info.shard_paths(str(tmp_path / "r"), content, split),
                                            len(content.classes))]
    boxes = [r for r in records if len(r["bbox/label"])]
    assert boxes, "the phantom set has boxed findings"
    for r in boxes:
        assert (r["bbox/xmin"] >= -0.5).all() and (r["bbox/xmax"] <= 32.5).all()
        for label in r["bbox/label"]:
            assert r["labels/state"][label] == 1  # a box is drawn only for a labelled finding


def test_real_kermany_jpegs_build_with_the_official_split_and_three_classes(fixtures, tmp_path):
    assert build("--dataset", "kermany", "--images", str(fixtures / "kermany"), "--classes", "3", "--split", "source",
                 "--out", str(tmp_path / "k")) == 0
    content = info.RecordsInfo.load(str(tmp_path / "k"))
    assert content.task == "multiclass" and list(content.splits) == ["val"]
    assert content.splits["val"].examples == 16
    assert content.splits["val"].positives("Bacteria") == 8


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


def test_overwrite_into_the_image_folder_is_one_line_exit_2_and_every_image_survives(phantoms, capsys):
    d = phantoms["folders"]
    before = {p: p.stat().st_mtime_ns for p in d.rglob("*")}
    assert build("--dataset", "csv", "--images", str(d), "--out", str(d), "--overwrite") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --out {d} is inside --images {d}; write the records elsewhere")
    assert {p: p.stat().st_mtime_ns for p in d.rglob("*")} == before


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


# build_records with a kill -9 of itself in the middle of its third shard: deterministic, where
# polling for sidecars from outside raced the build (it often finished first).
KILLED_IN_THIRD_SHARD = """
import os, signal, sys
from cxr_tf import build_records
from cxr_tf.records import output

real, calls = output.write_shard, []

def write_shard(out, name, results, strict):
    calls.append(name)
    if len(calls) == 3:
        def dying(results=results):
            for i, result in enumerate(results):
                if i == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield result
        results = dying()
    return real(out, name, results, strict)

output.write_shard = write_shard
sys.exit(build_records.cli.run(build_records.main))
"""


def nih_args(d: Path) -> list[str]:
    return ["--dataset", "nih", "--labels", f"{d}/Data_Entry_2017.csv", "--images", str(d), "--image-size", "32",
            "--workers", "1", "--shard-mb", "0.005"]


def records_of(out: Path) -> tuple[dict[str, info.Split], info.SkippedRows]:
    content = info.RecordsInfo.load(str(out))
    return content.splits, content.skipped


@pytest.mark.slow
def test_a_killed_build_rerun_with_the_same_arguments_ends_with_the_same_records(phantoms, tmp_path):
    args = nih_args(phantoms["nih"])
    assert cli.run(build_records.main, [*args, "--out", str(tmp_path / "whole")]) == 0

    killed = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run([sys.executable, "-c", KILLED_IN_THIRD_SHARD, *args, "--out", str(killed)], env=env,
                             capture_output=True, timeout=300)
    assert process.returncode == -signal.SIGKILL
    assert len(list((killed / output.BUILD_DIR).glob("*.tfrecord.json"))) == 2
    assert len(list(killed.glob("*.tfrecord.partial"))) == 1  # killed while writing its third shard
    assert not (killed / info.FILENAME).exists()

    assert cli.run(build_records.main, [*args, "--out", str(killed)]) == 0
    assert records_of(killed) == records_of(tmp_path / "whole")
    assert not list(killed.glob("*.partial"))


@pytest.mark.slow
def test_a_build_stopped_by_the_file_size_limit_is_one_line_and_its_rerun_ends_with_the_same_records(
        phantoms, tmp_path):
    import resource

    args = nih_args(phantoms["nih"])
    out = tmp_path / "limited"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run(
        [sys.executable, "-m", "cxr_tf.build_records", *args, "--out", str(out)], env=env, capture_output=True,
        text=True, timeout=300, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)))
    last = process.stderr.strip().splitlines()[-1]
    assert process.returncode == 1 and "Traceback" not in process.stderr
    assert last.startswith("error: ") and "cannot write (File too large)" in last and "ulimit -f" in last
    assert not (out / info.FILENAME).exists()

    assert cli.run(build_records.main, [*args, "--out", str(out)]) == 0
    assert cli.run(build_records.main, [*args, "--out", str(tmp_path / "whole")]) == 0
    assert records_of(out) == records_of(tmp_path / "whole")


def test_limit_and_jpeg_encoding_are_honoured(phantoms, tmp_path):
    assert build("--dataset", "csv", "--images", str(phantoms["folders"]), "--limit", "12", "--encoding", "jpeg",
                 "--resize", "squash", "--out", str(tmp_path / "r")) == 0
    content = info.RecordsInfo.load(str(tmp_path / "r"))
    assert sum(s.examples for s in content.splits.values()) == 12
    assert (content.encoding, content.resize) == ("jpeg", "squash")
    record = next(output.read_records(info.shard_paths(str(tmp_path / "r"), content, "train"),
                                      len(content.classes)))
    assert record["image/format"] == b"jpeg" and record["image/encoded"][:2] == b"\xff\xd8"
