"""The study recipes in pipelines/ carry their study's values, say where, and leave nothing to a default.

``STUDIES`` is written from the studies themselves (../shared/seeds/, mapped in ../shared/SEEDS.md), not
from the recipes: a recipe that drifts from its study fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from cxr_tf.training.fit_config import FitConfig

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"

# Values each study states (a value the study leaves open is not here).
S1 = {"classes": ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"],
      "uncertainty": "ones", "blank": "zeros", "propagate_parents": "uncertain", "image_size": 224, "enhance": True,
      "loss": "weighted_bce", "schedule": "cyclic", "clr_mode": "triangular2", "batch_size": 8, "epochs": 34,
      "augment": False}
S2 = {"classes": ["Atelectasis", "Infiltration", "Effusion", "No Finding"], "image_size": 224, "weights": "imagenet",
      "loss": "bce_pos_weight", "batch_size": 128, "lr": 1e-3, "dropout": 0.0}
S3 = {"classes": ["COVID", "Normal", "Lung_Opacity", "Viral Pneumonia"], "image_size": 128, "channels": "gray3",
      "augment": False, "balance": "oversample", "batch_size": 128, "epochs": 100, "patience": 20, "dropout": 0.0}
S4 = {"classes": ["Normal", "Bacteria", "Virus"], "image_size": 224, "channels": "gray3", "augment": False,
      "balance": "undersample", "loss": "categorical_ce", "lr": 1e-3, "batch_size": 128, "schedule": "cosine",
      "patience": 2}
S4_PRETRAINED = {**S4, "weights": "imagenet", "freeze": "backbone", "epochs": 20, "fine_tune_epochs": 4}
S5 = {"classes": ["Normal", "Pneumonia"], "model": "resnet50", "weights": "imagenet", "dropout": 0.5,
      "freeze": "backbone", "epochs": 100, "fine_tune_epochs": 100, "fine_tune_lr": 2e-3, "loss": "categorical_ce",
      "class_weights": [3.0, 1.0], "optimizer": "adam", "lr": 2e-3, "batch_size": 80, "patience": 20,
      "balance": "none"}
STUDIES = {
    "s1_chexpert_densenet121": {**S1, "model": "densenet121"},
    "s1_chexpert_efficientnetb4": {**S1, "model": "efficientnetb4"},
    "s2_nih_resnet152_frozen": {**S2, "model": "resnet152", "freeze": "backbone", "optimizer": "adagrad"},
    "s2_nih_resnet152_unfrozen": {**S2, "model": "resnet152", "freeze": "none", "optimizer": "adagrad"},
    "s2_nih_vit_frozen": {**S2, "model": "vit_base", "freeze": "backbone", "optimizer": "adam"},
    "s2_nih_vit_unfrozen": {**S2, "model": "vit_base", "freeze": "none", "optimizer": "adam"},
    "s3_covid_cnn5": {**S3, "model": "cnn5", "weights": "none", "optimizer": "adam"},
    "s3_covid_resnet18": {**S3, "model": "resnet18", "weights": "imagenet", "freeze_stages": 1},
    "s3_covid_resnet34": {**S3, "model": "resnet34", "weights": "imagenet", "freeze_stages": 1},
    "s4_kermany3_baseline_cnn": {**S4, "model": "s4_baseline_cnn", "weights": "none", "optimizer": "adam",
                                 "epochs": 25},
    "s4_kermany3_scratch_cnn": {**S4, "model": "s4_scratch_cnn", "weights": "none", "optimizer": "adam",
                                "epochs": 25},
    "s4_kermany3_resnet50": {**S4_PRETRAINED, "model": "resnet50", "optimizer": "adam"},
    "s4_kermany3_efficientnetb0": {**S4_PRETRAINED, "model": "efficientnetb0", "optimizer": "adam"},
    "s4_kermany3_efficientnetb0_adamw": {**S4_PRETRAINED, "model": "efficientnetb0", "optimizer": "adamw",
                                         "weight_decay": 5e-4},
    "s4_kermany3_mobilenetv2": {**S4_PRETRAINED, "model": "mobilenetv2", "optimizer": "adam"},
    "s4_kermany3_vgg16": {**S4_PRETRAINED, "model": "vgg16", "optimizer": "adam"},
    "s4_kermany3_vit": {**S4, "weights": "none", "optimizer": "adam", "epochs": 25},
    "s4_kermany3_vit_pretrained": {**S4, "model": "vit_base", "weights": "imagenet", "optimizer": "adam",
                                   "epochs": 20},
    "s5_kermany2_resnet50": S5,
}
# What a study recipe must state itself: a default here would silently decide the study.
STATED = {"records", "image_size", "augment", "noise", "balance", "model", "weights", "dropout", "freeze",
          "freeze_stages", "fine_tune_epochs", "loss", "optimizer", "lr", "schedule", "batch_size", "epochs",
          "patience", "seed", "out"}
# Every key line ends in a quotation from the study or says why cxr_tf chose the value.
SOURCED = re.compile(r'#.*("[^"]+"|not in the study: \S)')


def recipe_lines(name: str) -> dict[str, str]:
    """key -> its line, for the key lines of a recipe."""
    lines = (PIPELINES / f"{name}.toml").read_text().splitlines()
    return {line.split("=", 1)[0].strip(): line for line in lines if re.match(r"^\w+ = ", line)}


def test_every_study_recipe_is_in_the_table():
    assert sorted(p.stem for p in PIPELINES.glob("s[1-5]_*.toml")) == sorted(STUDIES)


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_recipe_carries_its_studys_values(name):
    recipe = tomllib.loads((PIPELINES / f"{name}.toml").read_text())
    assert {key: recipe.get(key) for key in STUDIES[name]} == STUDIES[name]


@pytest.mark.parametrize("name", [*sorted(STUDIES), "demo_phantoms"])
def test_every_key_quotes_the_study_or_says_it_is_not_in_the_study(name):
    unsourced = [line for line in recipe_lines(name).values() if not SOURCED.search(line)]
    assert unsourced == []


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_recipe_states_every_key_that_decides_the_study(name):
    keys = set(recipe_lines(name))
    assert STATED - keys == set()
    if name.startswith("s2"):  # S2's class filter and noise are its point; say which reading is used
        assert {"exclusive_classes", "noise"} <= keys
    if recipe_lines(name)["schedule"].split("=")[1].strip().startswith('"cosine"'):
        assert "warmup_epochs" in keys


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_recipe_gives_the_build_records_command_with_its_split_and_resize(name):
    text = (PIPELINES / f"{name}.toml").read_text()
    assert "python -m cxr_tf.build_records" in text and "--split " in text and "--resize " in text
    if name.startswith("s1"):
        assert "--split labelset" in text and "--split-uncertainty ones --split-propagate-parents uncertain" in text
        assert "--views all" in text


def test_s4_carves_val_from_kermanys_train_and_s5_keeps_the_official_split():
    for name in (n for n in STUDIES if n.startswith("s4")):
        assert "--split source --val 0.1" in (PIPELINES / f"{name}.toml").read_text()
    s5 = (PIPELINES / "s5_kermany2_resnet50.toml").read_text()
    assert "--split source \\\n" in s5  # the command's line ends there: no --val, the official 8 + 8 val is kept


def test_fit_does_not_augment_unless_asked_and_the_demo_asks():
    assert FitConfig(records="r").augment is False
    assert tomllib.loads((PIPELINES / "demo_phantoms.toml").read_text())["augment"] is True
