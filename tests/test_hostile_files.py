"""Hostile files: only regular files are read, walks stay inside their root, label files cannot explode.

Every fault here used to hang, exhaust memory, crash with a traceback or store a damaged image; each
now gives one reason, and the good files next to it are still used.
"""

from __future__ import annotations

import gzip
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxr_tf import cli, manifest as manifest_cli
from cxr_tf.io import imaging
from cxr_tf.datasets import manifest_io
from cxr_tf.errors import UserError
from cxr_tf.io.paths import UnsafePath, relative_path
from cxr_tf.records import build
from cxr_tf.serving import predict
from tests import image_factory as make
from tests.test_records_build import OPTIONS, good_images, manifest_of


def hostile_root(root: Path) -> dict[str, str]:
    """Files an image reader meets in the wild, next to good ones: name -> expected reason."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(root / "pipe.png")
    (root / "folder.png").mkdir()
    (root / "loop.png").symlink_to("loop2.png")
    (root / "loop2.png").symlink_to("loop.png")
    return {"zero.png": "not a regular file (a character device)", "pipe.png": "not a regular file (a FIFO)",
            "folder.png": "not a regular file (a directory)", "loop.png": "symbolic link loop",
            "loop2.png": "symbolic link loop"}


def truncated_jpeg_with_end_marker() -> bytes:
    """A JPEG cut in the middle of its scan and given its end marker back: libjpeg pads it with grey."""
    rng = np.random.default_rng(0)
    data = make.jpeg(rng.integers(0, 255, (64, 64), np.uint8))
    return data[: len(data) // 2] + b"\xff\xd9"


def test_build_skips_devices_fifos_folders_and_link_loops_with_a_reason_and_keeps_the_good_images(tmp_path):
    root = tmp_path / "src"
    good = good_images(root, 3)
    expected = hostile_root(root)
    expected["zero.png"] = "path escapes the image root (through a symbolic link)"  # refused before reading
    manifest = manifest_of(root, good + sorted(expected))
    started = time.monotonic()
    content = build.build_records(manifest, str(tmp_path / "out"), OPTIONS)
    assert time.monotonic() - started < 30  # a FIFO read would block forever, /dev/zero until memory runs out
    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
    assert dict(zip(skipped["path"], skipped["reason"])) == expected
    assert content.splits["train"].examples == len(good)


def test_predict_lists_devices_fifos_folders_and_link_loops_as_errors(tmp_path):
    from cxr_tf.models.heads import HEADS
    from cxr_tf.models.metadata import ModelMetadata
    from cxr_tf.pipeline.model_input import InputSpec

    root = tmp_path / "scans"
    expected = hostile_root(root)
    (root / "good.png").write_bytes(make.png(make.gradient()))
    meta = ModelMetadata(["A"], HEADS.get("multilabel"), {"A": 0.5}, "run", InputSpec(32, 32, "pad", "gray1"),
                         "cnn5", str(tmp_path), "0")
    model = predict.Model(tmp_path, meta, lambda pixels: np.full((len(pixels), 1), 0.25, np.float32))
    del expected["folder.png"]  # a folder in a walked directory is walked, not read
    results = {Path(p.path).name: p for p in predict.predict(model, predict.collect([root]))}
    assert {name: results[name].error for name in expected} == expected
    assert results["good.png"].probabilities == {"A": 0.25}


def test_a_2_gb_sparse_png_is_refused_from_its_size_without_being_read(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as fh:
        fh.write(make.png(make.gradient()))
        fh.truncate(2 << 30)  # sparse: no disk space used, 2 GB to whoever reads it
    started = time.monotonic()
    with pytest.raises(imaging.ImageError, match=r"file too large \(2147483648 bytes"):
        imaging.load_gray8(path)
    assert time.monotonic() - started < 1


def test_a_truncated_jpeg_with_its_end_marker_is_refused_and_libjpeg_says_nothing_on_stderr(capfd):
    with pytest.raises(imaging.ImageError, match="truncated image .*premature end of data segment"):
        imaging.decode_gray8(truncated_jpeg_with_end_marker())
    assert capfd.readouterr().err == ""
    assert imaging.decode_gray8(make.jpeg(make.gradient())).shape == (48, 40)  # stderr is restored


def test_the_walker_stays_in_its_root_and_lists_links_out_loops_and_unreadable_folders(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "a" / "deep").mkdir(parents=True)
    (root / "a" / "deep" / "1.png").write_bytes(b"x")
    (root / "locked").mkdir()
    (root / "locked" / "2.png").write_bytes(b"x")
    (root / "slash").symlink_to("/")
    (root / "a" / "deep" / "up").symlink_to("..")
    (root / "alias").symlink_to("a")  # a folder inside the root: walked where it is, not twice
    (root / "self.png").symlink_to("self.png")
    scandir = os.scandir

    def scandir_refusing_locked(path):  # tests run as root, whom chmod 000 does not stop
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_refusing_locked)
    walk = manifest_io.walk_images(root)
    assert walk.paths == ["a/deep/1.png", "self.png"]  # the reader reports the looping file
    assert walk.skipped == [("a/deep/up", "symbolic link loop (a link to a folder above it; not followed)"),
                            ("locked", "unreadable folder (Permission denied)"),
                            ("slash", "link to a folder outside the image root (not followed)")]


def test_folder_mode_puts_what_the_walk_skipped_in_the_manifests_skipped_rows(tmp_path):
    from cxr_tf.datasets import DATASETS
    from cxr_tf.datasets.source import SourceConfig

    root = tmp_path / "folders"
    (root / "normal").mkdir(parents=True)
    (root / "normal" / "a.png").write_bytes(make.png(make.gradient()))
    (root / "normal" / "slash").symlink_to("/")
    manifest = DATASETS.get("csv")(SourceConfig(dataset="csv", images=str(root)))
    assert list(manifest.frame["path"]) == ["normal/a.png"]
    assert manifest.skipped.values.tolist() == [["normal/slash", "link to a folder outside the image root (not followed)"]]


def labels_csv(tmp_path: Path, name: str, data: bytes) -> list[str]:
    (tmp_path / name).write_bytes(data)
    return ["--dataset", "csv", "--labels", str(tmp_path / name), "--path-col", "path", "--class-cols", "A",
            "--out", str(tmp_path / "m.csv")]


@pytest.mark.parametrize("name, data, message", [
    pytest.param("nuls.csv.gz", gzip.compress(b"path,A\n" + bytes(64 << 20), compresslevel=1),
                 r"binary data \(a NUL byte at offset 7\), not a CSV file", id="gzip-of-nuls"),
    pytest.param("header.csv", b"path,A," + b"B" * 200_000 + b"\na.png,1,0\n",
                 r"line 1 is not a CSV header \(field larger than field limit", id="header-field-over-128-kb"),
    pytest.param("notgzip.csv.gz", b"path,A\n", "not a readable gzip file", id="not-gzip"),
])
def test_label_files_that_are_not_tables_fail_in_one_line(tmp_path, capsys, name, data, message):
    assert cli.run(manifest_cli.main, labels_csv(tmp_path, name, data)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "m.csv").exists()


def test_a_gzip_expanding_beyond_the_cap_is_refused_after_reading_no_more_than_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest_io, "MAX_TABLE_BYTES", 4 << 20)
    (tmp_path / "big.csv.gz").write_bytes(gzip.compress(b"path,A\n" + b"a.png,1\n" * (1 << 20), compresslevel=1))
    with pytest.raises(UserError, match=f"expands to over {4 << 20} bytes"):
        manifest_io.read_table(tmp_path / "big.csv.gz", "--labels")


def test_a_fifo_given_as_labels_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "labels.csv")
    with pytest.raises(UserError, match=r"labels.csv: not a regular file \(a FIFO\)"):
        manifest_io.read_table(tmp_path / "labels.csv", "--labels")


def test_a_row_with_an_unbalanced_quote_is_skipped_and_the_rows_after_it_are_kept(tmp_path):
    (tmp_path / "l.csv").write_text('path,A\na.png,1\nb.png,"1\nc.png,0\n')
    rows, skipped = manifest_io.read_table(tmp_path / "l.csv", "--labels")
    assert list(rows["path"]) == ["a.png", "c.png"]
    assert list(skipped["reason"]) == ["line 3: malformed row (unbalanced quote)"]


def test_a_nul_byte_in_a_path_is_an_unsafe_path_not_a_crash():
    with pytest.raises(UnsafePath, match="NUL byte in path"):
        relative_path("a\0b.png")
    paths, reasons = manifest_io.normalise_paths(pd.Series(["ok.png", "a\0b.png"]))
    assert list(reasons) == ["", "unsafe path: NUL byte in path"]


def test_explain_skips_a_fifo_and_a_device_link_with_the_reason_instead_of_hanging(phantom_run, tmp_path, capsys):
    from cxr_tf import explain as explain_cli

    hostile_root(tmp_path / "scans")
    code = cli.run(explain_cli.main, ["--run", str(phantom_run), "--out", str(tmp_path / "out"),
                                      str(tmp_path / "scans" / "pipe.png"), str(tmp_path / "scans" / "zero.png")])
    captured = capsys.readouterr()
    assert code == 0
    assert f"skipped {tmp_path / 'scans' / 'pipe.png'}: not a regular file (a FIFO)" in captured.err
    assert f"skipped {tmp_path / 'scans' / 'zero.png'}: not a regular file (a character device)" in captured.err
    assert "0 overlay(s)" in captured.out and "2 unreadable file(s) skipped" in captured.out
