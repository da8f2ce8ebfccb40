"""The shared plumbing of cxr_tf.io: atomic writes, output-directory claims, the worker pool and
reading an image file with the reason it cannot be used."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_tf.errors import UserError
from cxr_tf.io import atomic, claims, imaging, workers

OWNER = claims.Owner(command="tool", config_file="config.json", ignore=frozenset({"threads"}),
                     writes=lambda out, name: name.endswith(".out") or name == "config.json", lock=".lock")


def _png(path: Path, side: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((side, side), 128, np.uint8))
    return path


def _claimed(out: Path, config: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config))
    (out / "a.out").write_text("result")


# Atomic writes

def test_a_failed_write_leaves_the_old_file_intact_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.replacing(target) as partial:
            partial.write_text("half of the new")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_finished_write_replaces_the_file_from_a_temporary_in_the_same_directory(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with atomic.replacing(target) as partial:
        assert partial.parent == target.parent and partial != target
        partial.write_text("new")
    assert target.read_text() == "new" and not Path(f"{target}{atomic.PARTIAL}").exists()


def test_write_bytes_creates_parents_and_remove_partials_clears_what_a_killed_writer_left(tmp_path):
    target = tmp_path / "images" / "a.png"
    atomic.write_bytes(target, b"whole")
    left = atomic.hidden_partial(tmp_path / "images" / "b.png")
    left.write_bytes(b"half")
    atomic.remove_partials(tmp_path)
    assert target.read_bytes() == b"whole" and not left.exists()
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["a.png"]


def test_a_failed_directory_write_keeps_the_earlier_directory_and_leaves_no_staging(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "model.keras").write_text("earlier")
    with pytest.raises(RuntimeError):
        with atomic.staged_directory(out) as staging:
            (staging / "model.keras").write_text("half")
            raise RuntimeError("killed")
    assert (out / "model.keras").read_text() == "earlier"
    with atomic.staged_directory(out) as staging:
        (staging / "model.keras").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert (out / "model.keras").read_text() == "new"


# Output-directory claims

def test_a_new_or_empty_directory_is_claimed_and_the_same_config_resumes(tmp_path):
    assert claims.claim(str(tmp_path / "new"), {"seed": 1}, OWNER) is False
    _claimed(tmp_path / "run", {"seed": 1, "threads": 2})
    assert claims.claim(str(tmp_path / "run"), {"seed": 1, "threads": 8}, OWNER) is True  # threads: ignored


def test_a_directory_holding_another_config_is_refused_naming_what_differs(tmp_path):
    _claimed(tmp_path / "run", {"seed": 1})
    with pytest.raises(UserError, match=r"holds another tool run with other settings \(seed\).*--overwrite"):
        claims.claim(str(tmp_path / "run"), {"seed": 2}, OWNER)
    assert (tmp_path / "run" / "a.out").read_text() == "result"


def test_overwrite_deletes_only_the_owners_files_and_refuses_a_users_file(tmp_path):
    out = tmp_path / "run"
    _claimed(out, {"seed": 1})
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds 'notes.txt', which tool did not write"):
        claims.claim(str(out), {"seed": 2}, OWNER, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["a.out", "config.json", "notes.txt"]
    (out / "notes.txt").unlink()
    assert claims.claim(str(out), {"seed": 2}, OWNER, overwrite=True) is False
    assert list(out.iterdir()) == []


def test_an_unmarked_directory_is_refused_unless_the_owner_adopts_it(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    strict = claims.Owner(command="synth", config_file="synth.toml")
    with pytest.raises(UserError, match="is not empty"):
        claims.claim(str(tmp_path), {"seed": 1}, strict)
    adopting = claims.Owner(command="fit", config_file="config.toml", adopt_unmarked=True)
    assert claims.claim(str(tmp_path), {"seed": 1}, adopting) is False
    with pytest.raises(UserError, match="is a file, not a directory"):
        claims.claim(str(tmp_path / "notes.txt"), {"seed": 1}, adopting)


def test_a_held_directory_refuses_a_second_holder(tmp_path):
    with claims.hold(str(tmp_path / "out"), OWNER):
        with pytest.raises(UserError, match="is being written by another tool"):
            with claims.hold(str(tmp_path / "out"), OWNER):
                pass
    with claims.hold(str(tmp_path / "out"), OWNER):  # released when the first holder is done
        pass


# Worker pool

def test_more_workers_than_cores_are_capped_with_a_log_line(caplog, monkeypatch):
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    with caplog.at_level(logging.WARNING, logger="cxr_tf"):
        assert workers.worker_count(1000) == 2
    assert "--workers 1000: capped at 2" in caplog.text
    assert workers.worker_count(0) == 2 and workers.worker_count(1) == 1


@pytest.mark.parametrize("processes", [1, 2])
def test_the_pool_returns_results_in_the_items_order(processes):
    with workers.WorkerPool(processes, preload="operator") as pool:
        assert (pool.pool is None) == (processes == 1)  # one worker: no process at all
        assert list(pool.map(abs, range(0, -40, -1), chunksize=3)) == list(range(40))
    assert pool.pool is None


# Reading an image file, or why not

def test_a_readable_image_is_decoded_without_a_reason(tmp_path):
    gray, reason = imaging.load_gray8_or_reason(_png(tmp_path / "a.png"))
    assert reason is None and gray.shape == (32, 32) and gray.dtype == np.uint8


def test_unusable_files_give_the_reason_instead_of_raising(tmp_path):
    os.mkfifo(tmp_path / "fifo.png")
    whole = _png(tmp_path / "whole.png", side=64).read_bytes()
    (tmp_path / "corrupt.png").write_bytes(whole[:len(whole) // 2])
    assert imaging.load_gray8_or_reason(tmp_path / "missing.png") == (None, "missing file")
    assert imaging.load_gray8_or_reason(tmp_path / "fifo.png") == (None, "not a regular file (a FIFO)")
    gray, reason = imaging.load_gray8_or_reason(tmp_path / "corrupt.png")
    assert gray is None and reason == "corrupt image (decoder failed)"


def test_a_path_under_a_root_may_not_lead_out_of_it(tmp_path):
    root = tmp_path / "images"
    _png(root / "inside.png")
    (root / "link.png").symlink_to(_png(tmp_path / "outside.png"))
    assert imaging.load_gray8_or_reason("inside.png", root)[1] is None
    assert imaging.load_gray8_or_reason("link.png", root) == (
        None, "path escapes the image root (through a symbolic link)")
