"""data_manifests/: every adapter's catalog entry, and the sample manifests that document the schema."""

from __future__ import annotations

import pandas as pd
import pytest

from cxr_tf import resources
from cxr_tf.datasets import DATASETS, catalog
from cxr_tf.datasets.manifest_io import read_manifest_csv
from cxr_tf.datasets.source import SourceConfig


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_adapter_has_a_catalog_entry(name):
    entry = catalog.entry(name)
    assert entry.task in ("multilabel", "multiclass") and entry.licence
    if name != "csv":
        assert entry.classes and entry.download.startswith("https://")
        assert set(entry.label_tree) | set(entry.label_tree.values()) <= set(entry.classes)


@pytest.mark.parametrize("name, labels", [("nih", "Data_Entry_2017_v2020.csv"), ("chexpert", "chexpert_train.csv")])
def test_sample_manifests_are_what_the_adapters_produce(fixtures, name, labels):
    bbox = fixtures / "labels" / "BBox_List_2017.csv" if name == "nih" else None
    frame = DATASETS.get(name)(SourceConfig(dataset=name, labels=fixtures / "labels" / labels, bbox=bbox)).frame
    sample = read_manifest_csv(resources.folder(resources.CATALOG) / "samples" / f"{name}.csv")
    assert 15 <= len(sample) <= 25
    expected = frame.set_index("path").loc[sample["path"]].reset_index()
    pd.testing.assert_frame_equal(sample, expected)


def test_kermany_sample_manifest_is_what_the_adapter_makes_of_the_real_files(fixtures):
    frame = DATASETS.get("kermany")(SourceConfig(dataset="kermany", images=fixtures / "kermany", classes=3)).frame
    sample = read_manifest_csv(resources.folder(resources.CATALOG) / "samples" / "kermany.csv")
    pd.testing.assert_frame_equal(sample, frame.reset_index(drop=True))
