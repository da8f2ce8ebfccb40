"""TFDS: a build_records output is a TFDS dataset; cxr_tf's TFDS builders keep the records' content and splits."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import cxr_tf.tfds
from cxr_tf.datasets import load_manifest
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError
from cxr_tf.pipeline import make_dataset
from cxr_tf.records import build, info, output, tfds_metadata

# The 16 real Kermany images of the fixture, split by patient so that every split has examples.
SPLIT = dict(split="random", val=0.25, test=0.25, seed=0)


OPTIONS = build.RecordOptions(image_size=64, shard_mb=0.01)  # several shards per split


def kermany_manifest():
    return load_manifest(SourceConfig(dataset="kermany", images=Path(__file__).parent / "fixtures" / "kermany",
                                      **SPLIT))


@pytest.fixture(scope="module")
def kermany_records(tmp_path_factory) -> str:
    """The Kermany fixture as 64 px records."""
    out = str(tmp_path_factory.mktemp("tfds") / "records")
    build.build_records(kermany_manifest(), out, OPTIONS)
    return out


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, np.uint8).tobytes()).hexdigest()


def records_by_path(records: str, split: str) -> dict[str, dict]:
    content = info.RecordsInfo.load(records)
    return {r["image/path"].decode(): r for r in
            output.read_records(info.shard_paths(records, content, split), len(content.classes))}


def test_builder_from_directory_lists_the_splits_of_dataset_json_with_their_counts(kermany_records):
    content = info.RecordsInfo.load(kermany_records)
    builder = tfds.builder_from_directory(kermany_records)
    assert set(builder.info.splits) == set(content.splits) == {"train", "val", "test"}
    for split, entry in content.splits.items():
        assert builder.info.splits[split].num_examples == entry.examples > 0
        assert builder.info.splits[split].num_shards == len(entry.shards)
    assert builder.info.features["labels"]["state"].shape == (2,)
    assert "Normal, Pneumonia" in builder.info.description


def test_tfds_decodes_the_records_image_states_patient_and_path(kermany_records):
    builder = tfds.builder_from_directory(kermany_records)
    for split in ("train", "test"):
        stored = records_by_path(kermany_records, split)
        seen = {}
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            seen[example["image"]["path"].decode()] = example
        assert seen.keys() == stored.keys()
        for path, example in seen.items():
            record = stored[path]
            expected = tf.io.decode_image(record["image/encoded"], channels=1).numpy()
            assert example["image"]["encoded"].shape == (64, 64, 1)
            np.testing.assert_array_equal(example["image"]["encoded"], expected)
            np.testing.assert_array_equal(example["labels"]["state"], record["labels/state"])
            assert example["patient_id"] == record["patient_id"]
            assert example["view"] == b"frontal"


def test_tfds_examples_equal_make_dataset_examples(kermany_records):
    builder = tfds.builder_from_directory(kermany_records)
    ours = make_dataset(kermany_records, "val", image_size=64, channels="gray1", batch_size=64, deterministic=True)
    images, labels, _ = next(iter(ours))
    theirs = list(tfds.as_numpy(builder.as_dataset(split="val")))
    assert len(theirs) == len(images) == info.RecordsInfo.load(kermany_records).splits["val"].examples
    # Same multiset of (image, one-hot label): make_dataset interleaves shards, TFDS reads them in turn.
    assert (Counter((digest(e["image"]["encoded"]), tuple(e["labels"]["state"] == 1)) for e in theirs)
            == Counter((digest(np.round(i.numpy())), tuple(l.numpy() == 1)) for i, l in zip(images, labels)))


def test_a_build_without_tfds_metadata_gets_it_from_dataset_json(kermany_records, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(kermany_records, old, ignore=shutil.ignore_patterns(*tfds_metadata.TFDS_FILES))
    with pytest.raises(Exception):
        tfds.builder_from_directory(str(old))
    builder = cxr_tf.tfds.builder_from_records(str(old))
    assert builder.info.splits["train"].num_examples == info.RecordsInfo.load(str(old)).splits["train"].examples


def test_rerunning_the_build_of_an_older_finished_directory_adds_the_tfds_metadata(kermany_records, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(kermany_records, old, ignore=shutil.ignore_patterns(*tfds_metadata.TFDS_FILES))
    build.build_records(kermany_manifest(), str(old), OPTIONS)
    expected = info.RecordsInfo.load(str(old)).splits["val"].examples
    assert tfds.builder_from_directory(str(old)).info.splits["val"].num_examples == expected > 0


def test_builder_from_records_of_an_unfinished_directory_is_one_user_error(tmp_path):
    with pytest.raises(UserError, match="dataset.json does not exist"):
        cxr_tf.tfds.builder_from_records(str(tmp_path))


def test_kermany_manual_dir_builder_gives_the_records_splits_and_images(kermany_records, tmp_path, fixtures):
    config = cxr_tf.tfds.CxrConfig(name="fixture", image_size=64, **SPLIT)
    builder = cxr_tf.tfds.CxrKermany(data_dir=str(tmp_path), config=config)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(fixtures / "kermany")))
    for split in ("train", "val", "test"):
        stored = records_by_path(kermany_records, split)
        examples = {e["image"]["path"].decode(): e for e in tfds.as_numpy(builder.as_dataset(split=split))}
        assert examples.keys() == stored.keys()
        for path, example in examples.items():
            expected = tf.io.decode_image(stored[path]["image/encoded"], channels=1).numpy()
            np.testing.assert_array_equal(example["image"]["encoded"], expected)
            np.testing.assert_array_equal(example["labels"]["state"], stored[path]["labels/state"])


def test_tfds_load_cxr_phantoms_draws_them_with_no_download(tmp_path):
    splits, info_ = tfds.load("cxr_phantoms/tiny", data_dir=str(tmp_path), with_info=True)
    assert sum(s.num_examples for s in info_.splits.values()) == 60
    patients = {}
    for name, ds in splits.items():
        examples = list(tfds.as_numpy(ds))
        assert examples[0]["image"]["encoded"].shape == (64, 64, 1)
        assert examples[0]["labels"]["state"].shape == (15,)  # NIH's 14 findings and No Finding
        assert set(np.concatenate([e["labels"]["state"] for e in examples])) <= {0, 1}
        patients[name] = {e["patient_id"] for e in examples}
    assert not (patients["train"] & patients["test"]) and not (patients["train"] & patients["val"])
