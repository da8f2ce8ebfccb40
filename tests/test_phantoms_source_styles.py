"""Phantoms in the layouts of Kermany's and the COVID-19 Radiography Database's folders, read by their adapters."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_phantoms_writers import _spec

from cxr_tf import cli, synth
from cxr_tf.datasets import DATASETS
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.phantoms import writers


@pytest.mark.parametrize("findings, holdout, patient, path", [
    ((), False, 12, "chest_xray/train/NORMAL/IM-0012-0003.png"),
    (("Consolidation",), False, 12, "chest_xray/train/PNEUMONIA/person12_bacteria_7.png"),
    (("Infiltration",), True, 12, "chest_xray/test/PNEUMONIA/person12_virus_7.png"),
    (("Infiltration",), False, 10, "chest_xray/val/PNEUMONIA/person10_virus_7.png"),
])
def test_kermany_paths_carry_split_class_kind_and_patient(findings, holdout, patient, path):
    spec = _spec(findings, holdout=holdout, patient=patient, followup=2, index=7)
    assert writers.STYLES.get("kermany").path(spec) == path


def draw(tmp_path: Path, style: str) -> Path:
    out = tmp_path / style
    assert cli.run(synth.main, ["--out", str(out), "--style", style, "--n", "80", "--size", "32", "--workers", "1",
                                "--valid-share", "0.25"]) == 0
    return out


def test_kermany_phantoms_are_three_classes_in_three_official_splits(tmp_path):
    manifest = DATASETS.get("kermany")(SourceConfig(dataset="kermany", images=draw(tmp_path, "kermany"), classes=3))
    frame = manifest.frame
    assert len(frame) == 80 and manifest.classes == ["Normal", "Bacteria", "Virus"]
    assert set(frame[mf.SOURCE_SPLIT]) == {"train", "val", "test"}
    assert (frame[manifest.classes].sum() > 0).all()
    # A patient's films never straddle two official splits.
    assert (frame.groupby(mf.PATIENT)[mf.SOURCE_SPLIT].nunique() == 1).all()


def test_covid_radiography_phantoms_fill_its_four_class_folders(tmp_path):
    images = draw(tmp_path, "covid_radiography")
    manifest = DATASETS.get("covid_radiography")(SourceConfig(dataset="covid_radiography", images=images))
    assert len(manifest.frame) == 80
    assert (manifest.frame[manifest.classes].sum() > 0).all()
    assert (images / "COVID-19_Radiography_Dataset" / "Viral Pneumonia" / "images").is_dir()
