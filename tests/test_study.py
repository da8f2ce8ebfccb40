"""python -m cxr_tf.study: a study's grid as fit runs, resumable, with the study's tables in its own layout."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from cxr_tf import cli, config, study
from cxr_tf.errors import UserError
from cxr_tf.models import MODELS
from cxr_tf.studies import runner
from cxr_tf.studies.grids import ARMS, STUDIES

# Smaller than the studies' --phantoms grids: 32 px, two steps per epoch, no bootstrap.
TINY = ["--phantoms", "--phantom-n", "120", "--phantom-size", "32", "--resamples", "0",
        "--set", "image_size=32", "--set", "epochs=1", "--set", "steps_per_epoch=2", "--set", "batch_size=16"]


def run_study(name: str, out: Path, *flags: str, capsys=None) -> str:
    assert cli.run(study.main, [name, "--out", str(out), *TINY, *flags]) == 0
    return capsys.readouterr().out if capsys else ""


@pytest.mark.parametrize("name, arm, recipe, overrides, label", ARMS, ids=[f"{s}-{a}" for s, a, *_ in ARMS])
def test_every_arm_is_a_valid_fit_config_of_a_registered_model(name, arm, recipe, overrides, label, tmp_path):
    cfg = runner.arm_config(STUDIES.get(name).arm(arm), records="records/x", out=tmp_path)
    assert cfg.model in MODELS
    assert cfg.out == str(tmp_path / arm) and cfg.records == "records/x"
    assert all(getattr(cfg, key) == value for key, value in overrides.items())


def test_s1_is_two_models_with_and_without_enhancement_layers():
    cells = {(runner.arm_config(a, records="r", out=Path("o")).model,
              runner.arm_config(a, records="r", out=Path("o")).input_channels) for a in STUDIES.get("s1").arms}
    assert cells == {(m, c) for m in ("densenet121", "efficientnetb4") for c in ("enhance", "gray3")}


def test_s3_freezes_0_to_4_blocks_of_both_resnets_beside_the_handcrafted_cnn():
    cfgs = [runner.arm_config(a, records="r", out=Path("o")) for a in STUDIES.get("s3").arms]
    assert sorted((c.model, c.freeze_stages) for c in cfgs) == sorted(
        [("cnn5", 0)] + [(m, k) for m in ("resnet18", "resnet34") for k in range(5)])


def test_layers_apply_recipe_then_arm_then_phantom_reduction_then_set(tmp_path):
    arm = STUDIES.get("s1").arm("densenet121_plain")
    phantoms = dataclasses.replace(STUDIES.get("s1").phantoms, reduced={"epochs": 3, "image_size": 64})
    cfg = runner.arm_config(arm, records="r", out=tmp_path, phantoms=phantoms, overrides={"image_size": 32},
                            deterministic=True)
    recipe = config.load_toml(arm.recipe_path)
    assert (recipe["enhance"], cfg.enhance) == (True, False)
    assert (cfg.epochs, cfg.image_size, cfg.batch_size) == (3, 32, recipe["batch_size"])
    assert cfg.deterministic is True


@pytest.mark.parametrize("name", STUDIES.names())
def test_the_phantom_reduction_keeps_each_arm_frozen_or_fine_tuned_as_the_study_has_it(name, tmp_path):
    spec = STUDIES.get(name)
    for arm in spec.arms:
        full = runner.arm_config(arm, records="r", out=tmp_path)
        small = runner.arm_config(arm, records="r", out=tmp_path, phantoms=spec.phantoms)
        assert (small.freeze, small.freeze_stages, small.model) == (full.freeze, full.freeze_stages, full.model)
        fine_tunes = full.freeze == "backbone" and full.fine_tune_epochs > 0
        assert (small.freeze == "backbone" and small.fine_tune_epochs > 0) == fine_tunes, arm.name
        # A single-phase arm trains as long as the study's other reduced arms, whatever its neighbours do.
        assert small.epochs >= (1 if fine_tunes else 2), arm.name


def test_an_arms_own_phantom_overrides_come_after_the_reduced_grid_and_before_set(tmp_path):
    s4 = STUDIES.get("s4")
    vit, resnet = s4.arm("vit_pretrained"), s4.arm("resnet50")
    phantoms = dataclasses.replace(s4.phantoms, reduced={**s4.phantoms.reduced, "epochs": 4},
                                   arms={"vit_pretrained": {"epochs": 2}})

    def cfg(arm, **kw):
        return runner.arm_config(arm, records="r", out=tmp_path, phantoms=phantoms, **kw)

    assert cfg(vit).epochs == 2
    assert cfg(resnet).epochs == s4.phantoms.two_phase["epochs"]  # the neighbours keep the grid's
    assert cfg(vit, overrides={"epochs": 3}).epochs == 3


def test_phantom_overrides_of_an_arm_the_study_lacks_are_refused():
    s2 = STUDIES.get("s2")
    with pytest.raises(ValueError, match="unknown arm.*resnet152_unfrozn"):
        dataclasses.replace(s2, phantoms=dataclasses.replace(s2.phantoms, arms={"resnet152_unfrozn": {"epochs": 1}}))


def test_an_unknown_arm_is_one_line_naming_the_known_ones():
    with pytest.raises(UserError, match="no arm.*resnet99.*cnn5"):
        runner.select_arms(STUDIES.get("s3"), ["resnet99"])


@pytest.mark.parametrize("flags", [[], ["--records", "r", "--phantoms"]], ids=["neither", "both"])
def test_records_or_phantoms_must_be_given_not_both(flags, tmp_path, capsys):
    assert cli.run(study.main, ["s1", "--out", str(tmp_path), *flags]) == 2
    assert "--records" in capsys.readouterr().err


@pytest.fixture(scope="module")
def s3_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s3") / "study"
    run_study("s3", out, "--arms", "cnn5", "resnet18_frozen0", "resnet18_frozen4")
    return out


@pytest.mark.slow
def test_s3_phantoms_tabulate_recall_epochs_time_and_parameters_against_frozen_blocks(s3_run):
    text = (s3_run / "study.md").read_text()
    assert "PHANTOMS" in text and "reported by the study" in text.lower()
    assert ("| Model | Frozen blocks | Micro-Recall | Epochs to converge | Time per epoch (s) | "
            "Trainable parameters |") in text
    assert (s3_run / "study_files" / "frozen_blocks.png").stat().st_size > 1000
    assert "data:image/png;base64," in (s3_run / "study.html").read_text()
    table = pd.read_csv(s3_run / "table.csv").set_index("arm")
    assert list(table.index) == ["cnn5", "resnet18_frozen0", "resnet18_frozen4"]
    assert list(table["freeze_stages"]) == [0, 0, 4]
    assert table.loc["resnet18_frozen4", "trainable_params"] < table.loc["resnet18_frozen0", "trainable_params"]
    assert table["micro_recall"].between(0, 1).all() and not table["deterministic"].any()


@pytest.mark.slow
def test_rerunning_a_study_trains_and_evaluates_no_finished_arm_again(s3_run, capsys):
    timing = (s3_run / "cnn5" / "timing.json").read_text()
    out = run_study("s3", s3_run, "--arms", "cnn5", "resnet18_frozen0", "resnet18_frozen4", capsys=capsys)
    assert out.count("finished earlier, evaluated earlier") == 3
    assert (s3_run / "cnn5" / "timing.json").read_text() == timing


@pytest.mark.slow
def test_an_arm_killed_before_its_evaluation_was_whole_is_evaluated_again(s3_run, capsys):
    metrics = s3_run / "cnn5" / "eval" / "test" / "metrics.json"
    before = json.loads(metrics.read_text())
    metrics.unlink()  # what a kill before the rename leaves: no metrics.json under eval/test
    out = run_study("s3", s3_run, "--arms", "cnn5", capsys=capsys)
    assert "cnn5: finished earlier, evaluated" in out and "evaluated earlier" not in out
    assert json.loads(metrics.read_text())["accuracy"] == before["accuracy"]
    assert not list((s3_run / "cnn5" / "eval").glob(".*partial"))


@pytest.mark.slow
def test_s1_phantoms_write_its_tables_in_the_thesis_layout(tmp_path):
    out = tmp_path / "s1"
    # DenseNet121's and EfficientNetB4's graphs alone take minutes to trace on two cores: the suite runs the
    # 2x2 grid with cnn5 in both models' places (python -m cxr_tf.study s1 --phantoms runs the real ones).
    run_study("s1", out, "--deterministic", "--set", "model=cnn5")
    text = (out / "study.md").read_text()
    classes = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
    assert ("| Model Name | Enhancement layers | Multilabel AUC | " + " | ".join(f"{c} AUC" for c in classes)
            + " | Accuracy |") in text
    assert "| Model Name | Enhancement layers | True Positives | False Negatives | True Negatives | False Positives |" \
        in text
    for heading in ("DenseNet121 with enhancement layers", "EfficientNetB4 no enhancement layers", "Time per run"):
        assert f"## {heading}" in text
    assert "| True Positive Rate |" in text and "| 0.79 |" in text  # ours, then the thesis' Table 1
    table = pd.read_csv(out / "table.csv").set_index("arm")
    assert list(table["channels"]) == ["enhance", "gray3", "enhance", "gray3"]
    assert table["deterministic"].all() and table["phantoms"].all()
    correct = (table["tp"] + table["tn"]) / (table["tp"] + table["tn"] + table["fp"] + table["fn"])
    assert (table["accuracy"] - correct).abs().max() < 1e-6
