"""CheXpert adapter on real train.csv rows (tests/fixtures/labels/chexpert_train.csv)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cxr_tf.datasets import DATASETS
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels"


def load(labels: Path, **flags):
    return DATASETS.get("chexpert")(SourceConfig(dataset="chexpert", labels=labels, **flags))


@pytest.fixture
def train_csv(fixtures) -> Path:
    return fixtures / "labels" / "chexpert_train.csv"


def test_paths_lose_the_release_prefix_and_name_the_patient(train_csv):
    manifest = load(train_csv)
    raw = pd.read_csv(train_csv, dtype=str)
    assert len(manifest) == len(raw) and len(manifest.skipped) == 0
    assert manifest.frame["path"].tolist() == raw["Path"].str.removeprefix("CheXpert-v1.0-small/").tolist()
    assert manifest.frame.loc[0, "patient_id"] == "patient00001"
    assert manifest.frame["patient_id"].nunique() == raw["Path"].str.split("/").str[2].nunique()
    assert set(manifest.frame["source_split"]) == {"train"}


def test_all_four_states_are_kept_apart(train_csv):
    manifest = load(train_csv)
    raw = pd.read_csv(train_csv, dtype=str, keep_default_na=False)
    for name in manifest.classes:
        expected = raw[name].map({"1.0": 1, "0.0": 0, "-1.0": -1, "": None}).astype("Float64").astype("Int8")
        pd.testing.assert_series_equal(manifest.frame[name], expected, check_names=False)
    assert set(manifest.states().to_numpy().ravel()) == {1, 0, -1, -2}


def test_views_and_projections_come_from_their_columns(train_csv):
    frame = load(train_csv).frame
    assert set(frame["view"]) == {"frontal", "lateral"}
    assert {"AP", "PA", "LL", "RL"} <= set(frame["projection"])
    assert (frame.loc[frame["view"] == "lateral", "projection"] == "").all()


def test_sex_becomes_m_or_f_and_age_whole_years(train_csv):
    frame = load(train_csv).frame
    raw = pd.read_csv(train_csv, usecols=["Sex", "Age"], dtype=str, keep_default_na=False)
    expected = raw["Sex"].map({"Male": "M", "Female": "F"}).fillna("")
    assert frame["sex"].tolist() == expected.tolist()
    assert frame["age"].tolist() == raw["Age"].tolist()
    assert (frame.iloc[0]["sex"], frame.iloc[0]["age"]) == ("F", "68")


@pytest.mark.parametrize("views", ["frontal", "lateral"])
def test_views_flag_keeps_only_that_view(train_csv, views):
    everything = load(train_csv).frame
    kept = load(train_csv, views=views).frame
    assert set(kept["view"]) == {views}
    assert len(kept) == (everything["view"] == views).sum()


def test_label_tree_is_the_papers_hierarchy(train_csv):
    tree = load(train_csv).label_tree
    assert tree["Pneumonia"] == "Consolidation" and tree["Consolidation"] == "Lung Opacity"
    assert tree["Cardiomegaly"] == "Enlarged Cardiomediastinum" and len(tree) == 6


def test_unknown_state_is_skipped_naming_the_observation(tmp_path, train_csv):
    lines = train_csv.read_text().splitlines()
    header = lines[0].split(",")
    bad = lines[1].split(",")
    bad[header.index("Edema")] = "2.0"
    path = tmp_path / "train.csv"
    path.write_text("\n".join([lines[0], ",".join(bad), *lines[2:5]]) + "\n")
    manifest = load(path)
    assert len(manifest) == 3
    assert manifest.skipped["reason"].tolist() == ["line 2: unknown label value '2.0' for Edema"]


@pytest.mark.parametrize("valid_split", ["val", "test"])
def test_folder_reads_train_and_valid_as_source_splits(tmp_path, train_csv, valid_split):
    lines = train_csv.read_text().splitlines()
    folder = tmp_path / "CheXpert-v1.0-small"
    folder.mkdir()
    (folder / "train.csv").write_text("\n".join(lines[:4]) + "\n")
    valid = [line.replace("/train/", "/valid/") for line in lines[4:6]]
    (folder / "valid.csv").write_text("\n".join([lines[0], *valid]) + "\n")
    frame = load(folder, valid_split=valid_split).frame
    assert frame["source_split"].tolist() == ["train"] * 3 + [valid_split] * 2
    assert frame["path"].str.startswith("valid/").sum() == 2


@pytest.mark.parametrize("given", ["download", "release"])
def test_images_is_the_release_folder_or_the_folder_holding_it(tmp_path, train_csv, given):
    release = tmp_path / "download" / "CheXpert-v1.0-small"
    release.mkdir(parents=True)
    manifest = load(train_csv, images=tmp_path / given if given == "download" else release)
    assert manifest.image_root == release
    assert (manifest.image_root / manifest.frame["path"][0]).parts[-5:-3] == ("CheXpert-v1.0-small", "train")


def test_wrong_file_names_the_missing_column(fixtures):
    with pytest.raises(UserError, match="no column 'Path'.*Data_Entry|Data_Entry.*no column 'Path'"):
        load(fixtures / "labels" / "Data_Entry_2017_v2020.csv")


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/labels")
def test_full_train_csv_keeps_every_row():
    manifest = load(SHARED / "chexpert_train.csv.gz")
    assert len(manifest) == 223_414 and len(manifest.skipped) == 0
    assert manifest.frame["patient_id"].nunique() == 64_540
