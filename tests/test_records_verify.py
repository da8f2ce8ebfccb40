"""What is read is what was built: replaced shards, edited dataset.json and damaged bytes each fail in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cxr_tf import cli, evaluate as evaluate_cli, fit as fit_cli
from cxr_tf.errors import DataError, UserError
from cxr_tf.pipeline import make_dataset
from cxr_tf.records import build, info
from tests.conftest import phantom_fit_args
from tests.test_records_build import OPTIONS, good_images, manifest_of


@pytest.fixture
def records(tmp_path) -> Path:
    root = tmp_path / "src"
    manifest = manifest_of(root, good_images(root, 10), split=["train"] * 6 + ["val"] * 2 + ["test"] * 2)
    build.build_records(manifest, str(tmp_path / "records"), OPTIONS)
    return tmp_path / "records"


def shard(records: Path, split: str, index: int = 0) -> Path:
    return records / info.RecordsInfo.load(str(records)).splits[split].shards[index].file


def flip_a_byte(path: Path) -> None:
    """Damage a record's payload without changing the file's size (its CRC no longer matches)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_shard_replaced_by_another_splits_shard_is_refused_on_read(records):
    test_shard = shard(records, "test")
    shutil.copyfile(shard(records, "train"), test_shard)
    with pytest.raises(UserError, match=f"{test_shard}: .* bytes where dataset.json records .*replaced or truncated"):
        make_dataset(str(records), "test", image_size=32, batch_size=2, shuffle=False)


def test_a_missing_shard_is_named(records):
    shard(records, "val").unlink()
    with pytest.raises(UserError, match=f"{shard(records, 'val')}: missing shard"):
        info.shard_paths(str(records), info.RecordsInfo.load(str(records)), "val")


def test_a_class_list_edited_in_dataset_json_is_detected(records):
    path = records / info.FILENAME
    content = json.loads(path.read_text())
    content["classes"] = content["classes"][::-1]
    path.write_text(json.dumps(content, indent=2))
    with pytest.raises(UserError, match="edited after the build"):
        info.RecordsInfo.load(str(records))


def test_a_loaded_dataset_json_saved_elsewhere_is_the_same_bytes(records, tmp_path):
    (tmp_path / "copy").mkdir()
    info.RecordsInfo.load(str(records)).save(str(tmp_path / "copy"))
    assert (tmp_path / "copy" / info.FILENAME).read_bytes() == (records / info.FILENAME).read_bytes()


def without_classes(text: str) -> str:
    content = json.loads(text)
    del content["classes"], content["checksum"]  # as a directory written before checksums would be
    return json.dumps(content)


@pytest.mark.parametrize("damage, message", [
    pytest.param(lambda text: text[: len(text) // 2], "not readable JSON", id="truncated"),
    pytest.param(lambda text: "[1, 2]", "not a dataset.json of format 1", id="not-an-object"),
    pytest.param(without_classes, "not a complete dataset.json of format 1 .*'classes'", id="missing-key"),
])
def test_a_damaged_dataset_json_is_one_line_naming_it(records, damage, message):
    path = records / info.FILENAME
    path.write_text(damage(path.read_text()))
    with pytest.raises(UserError, match=f"{path}: {message}") as raised:
        info.RecordsInfo.load(str(records))
    assert "\n" not in str(raised.value)


def test_verify_finds_a_damaged_shard_of_the_recorded_size_and_passes_an_intact_build(records):
    loaded = info.RecordsInfo.load(str(records))
    assert info.verify_shards(str(records), loaded) == sum(len(s.shards) for s in loaded.splits.values())
    flip_a_byte(shard(records, "val", 0))
    with pytest.raises(DataError, match=f"{shard(records, 'val', 0)}: sha256 differs from dataset.json's"):
        info.verify_shards(str(records), loaded)


def test_a_corrupted_shard_read_without_verify_is_named_instead_of_a_bare_data_loss_error(records):
    flip_a_byte(shard(records, "train", 1))
    ds = make_dataset(str(records), "train", image_size=32, batch_size=2, shuffle=False)
    with pytest.raises(DataError, match=f"{shard(records, 'train', 1)}: corrupted or truncated records"):
        with info.naming_damaged_shards(str(records)):
            for _ in ds:
                pass


@pytest.fixture
def damaged_phantom_records(phantom_records, tmp_path) -> Path:
    copy = tmp_path / "records"
    shutil.copytree(phantom_records, copy)
    flip_a_byte(shard(copy, "test"))
    return copy


@pytest.mark.parametrize("verify, message", [
    pytest.param([], "corrupted or truncated records", id="found-on-read"),
    pytest.param(["--verify"], "sha256 differs from dataset.json's", id="verify"),
])
def test_evaluate_on_a_damaged_shard_names_it_in_one_line_with_exit_1(phantom_run, damaged_phantom_records,
                                                                      tmp_path, capsys, verify, message):
    code = cli.run(evaluate_cli.main, ["--run", str(phantom_run), "--records", str(damaged_phantom_records),
                                       "--threshold", "0.5", "--resamples", "0", "--out", str(tmp_path / "eval"),
                                       *verify])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith(f"error: {shard(damaged_phantom_records, 'test')}: {message}")
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_fit_verify_refuses_damaged_records_before_training(damaged_phantom_records, tmp_path, capsys):
    args = phantom_fit_args(damaged_phantom_records, tmp_path / "run", "--epochs", "1", "--verify")
    assert cli.run(fit_cli.main, args) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"error: {shard(damaged_phantom_records, 'test')}: sha256 differs")
    assert not (tmp_path / "run" / "summary.json").exists()
