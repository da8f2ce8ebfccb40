"""python -m cxr_tf.evaluate: schema files, predictions equal to the model's, metrics equal to
scikit-learn's, thresholds from val, records order, noise sweep, multiclass runs, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from tests.conftest import PHANTOM_CLASSES
from tests.records_util import write_records

from cxr_tf import cli, evaluate as evaluate_cli
from cxr_tf.training import runs
from cxr_tf.evaluation import evaluate
from cxr_tf.records.info import RecordsInfo

CLASS_KEYS = {"n", "positives", "threshold", "auc", "auc_ci", "ap", "ap_ci", "sensitivity", "specificity", "ppv",
              "npv", "f1", "confusion", "bootstrap_dropped", "sensitivity_ci", "specificity_ci", "ppv_ci", "npv_ci",
              "f1_ci"}


def read_metrics(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text())


def copy_run(run: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(run, tmp / "run"))


@pytest.fixture(scope="module")
def evaluated(phantom_run, tmp_path_factory) -> Path:
    """A copy of ``phantom_run`` evaluated on its test split, with a gaussian noise sweep."""
    run = copy_run(phantom_run, tmp_path_factory.mktemp("evaluated"))
    assert cli.run(evaluate_cli.main, ["--run", str(run), "--resamples", "200", "--batch-size", "32",
                                       "--noise-sweep", "gaussian:0,255"]) == 0
    return run


@pytest.fixture(scope="module")
def scratch_run(phantom_run, tmp_path_factory) -> Path:
    """A copy of ``phantom_run`` that tests may write into."""
    return copy_run(phantom_run, tmp_path_factory.mktemp("scratch"))


def test_evaluate_writes_predictions_metrics_and_thresholds_per_the_schema(evaluated, phantom_records):
    out = evaluated / "eval" / "test"
    metrics = read_metrics(out)
    test_split = RecordsInfo.load(str(phantom_records)).splits["test"]
    assert metrics["examples"] == test_split.examples == 99
    assert metrics["patients"] == test_split.patients
    assert (metrics["split"], metrics["model"], metrics["task"]) == ("test", "cnn5", "multilabel")
    assert metrics["threshold"] == {"method": "youden", "split": "val"}
    assert metrics["bootstrap"] == {"resamples": 200, "seed": 0, "level": 0.95, "unit": "patient"}
    assert {"run", "records", "mean_auc", "mean_auc_ci", "micro", "macro", "noise_sweep"} <= set(metrics)
    assert list(metrics["classes"]) == PHANTOM_CLASSES
    assert all(set(entry) == CLASS_KEYS for entry in metrics["classes"].values())

    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.columns) == ["path", "patient", "view", "projection", "sex", "age"] + [
        f"{kind}_{name}" for name in PHANTOM_CLASSES for kind in ("label", "prob")]
    assert len(predictions) == 99
    saved = json.loads((evaluated / "thresholds.json").read_text())
    assert (saved["method"], saved["split"]) == ("youden", "val")
    assert saved["thresholds"] == {name: metrics["classes"][name]["threshold"] for name in PHANTOM_CLASSES}


def test_predictions_carry_the_subgroup_attributes_and_subgroup_counts_equal_a_groupby(evaluated):
    out = evaluated / "eval" / "test"
    metrics, predictions = read_metrics(out), pd.read_csv(out / "predictions.csv", keep_default_na=False,
                                                          na_values=[""])
    assert set(predictions["sex"]) <= {"M", "F"} and predictions["age"].between(0, 120).all()
    assert set(predictions["view"]) == {"frontal"} and set(predictions["projection"]) <= {"PA", "AP"}
    subgroups = metrics["subgroups"]["attributes"]
    assert list(subgroups) == ["view", "projection", "sex", "age band"]
    for attribute, column in (("sex", "sex"), ("projection", "projection")):
        grouped = predictions.groupby(column)
        assert {k: v["n"] for k, v in subgroups[attribute].items()} == grouped.size().to_dict()
        for name in PHANTOM_CLASSES:
            assert {k: v["classes"][name]["positives"] for k, v in subgroups[attribute].items()} == \
                grouped[f"label_{name}"].sum().astype(int).to_dict()


def test_metrics_hold_calibration_operating_points_errors_and_provenance(evaluated):
    out = evaluated / "eval" / "test"
    metrics, predictions = read_metrics(out), pd.read_csv(out / "predictions.csv")
    cal = metrics["calibration"]
    assert (cal["bins"], cal["binning"], cal["method"]) == (10, "equal-count", None)
    for name in PHANTOM_CLASSES:
        y, p = predictions[f"label_{name}"], predictions[f"prob_{name}"]
        assert cal["classes"][name]["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-5)
        assert sum(cal["classes"][name]["curve"]["count"]) == len(predictions)
    points = metrics["operating_points"]
    assert points["split"] == "val"
    for name in PHANTOM_CLASSES:
        entries = points["classes"][name]
        assert [(e["at"], e["target"]) for e in entries] == [("specificity", 0.9), ("specificity", 0.95),
                                                              ("sensitivity", 0.9), ("sensitivity", 0.95)]
        for e in entries:
            assert e["val"][e["at"]] >= e["target"]
            y, p = predictions[f"label_{name}"], predictions[f"prob_{name}"]
            assert e["sensitivity"] == pytest.approx(np.mean(p[y == 1] >= e["threshold"]), abs=1e-4)
            assert all(e[f"{k}_ci"] is None or len(e[f"{k}_ci"]) == 2 for k in ("sensitivity", "ppv", "f1"))
    gallery = json.loads((out / "errors.json").read_text())
    assert metrics["errors"] == {"per_class": 3, "images": len(gallery), "file": "errors.json"}
    for e in gallery:
        assert (out / e["file"]).is_file()
        row = predictions[predictions["path"] == e["path"]].iloc[0]
        wrong = row[f"label_{e['class']}"] == (0 if e["kind"] == "fp" else 1)
        assert wrong and (row[f"prob_{e['class']}"] >= e["threshold"]) == (e["kind"] == "fp")
    assert metrics["provenance"]["command"].startswith(f"python -m cxr_tf.evaluate --run {evaluated}")
    assert {"cxr_tf", "tensorflow", "keras", "git_commit", "device", "date"} <= set(metrics["provenance"])


def test_calibrate_scales_val_fitted_and_travels_with_the_export(phantom_run, tmp_path):
    from cxr_tf.evaluation import calibration
    from cxr_tf.serving import predict

    scratch_run = copy_run(phantom_run, tmp_path)
    assert cli.run(evaluate_cli.main, ["--run", str(scratch_run), "--calibrate", "platt", "--resamples", "0",
                                       "--gallery", "0", "--out", str(tmp_path / "cal")]) == 0
    fitted = json.loads((scratch_run / "calibration.json").read_text())
    assert (fitted["method"], fitted["split"]) == ("platt", "val")
    metrics = read_metrics(tmp_path / "cal")
    assert metrics["calibration"]["method"] == "platt"
    assert all("uncalibrated" in c for c in metrics["calibration"]["classes"].values())
    run = runs.load(scratch_run)
    assert run.model_metadata().calibration == fitted
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    raw = np.asarray(run.head.probabilities(run.load_model()(pixels)))
    np.testing.assert_allclose(predict.load_model(scratch_run).probabilities(pixels),
                               calibration.apply_numpy(raw, fitted, run.classes), atol=1e-6)
    # Thresholds chosen again without --calibrate are on raw probabilities: the calibration goes.
    assert cli.run(evaluate_cli.main, ["--run", str(scratch_run), "--resamples", "0", "--gallery", "0",
                                       "--out", str(tmp_path / "raw")]) == 0
    assert not (scratch_run / "calibration.json").exists()


def test_probabilities_and_labels_equal_the_model_on_make_dataset_images(evaluated):
    from cxr_tf.pipeline import make_dataset

    run = runs.load(evaluated)
    cfg = run.config
    ds = make_dataset(cfg.records, "test", classes=run.classes, uncertainty=cfg.uncertainty, blank=cfg.blank,
                      image_size=cfg.image_size, channels="gray1", batch_size=16, shuffle=False,
                      deterministic=True)
    expected = np.asarray(run.head.probabilities(run.load_model().predict(ds.map(lambda x, y, w: x), verbose=0)))
    labels = np.concatenate([y.numpy() for _, y, _ in ds])
    predictions = pd.read_csv(evaluated / "eval" / "test" / "predictions.csv")
    np.testing.assert_allclose(predictions[[f"prob_{c}" for c in run.classes]], expected, atol=1e-6)
    np.testing.assert_array_equal(predictions[[f"label_{c}" for c in run.classes]], labels)


def test_metrics_equal_scikit_learn_recomputed_from_predictions_csv(evaluated):
    out = evaluated / "eval" / "test"
    metrics, predictions = read_metrics(out), pd.read_csv(out / "predictions.csv")
    for name in PHANTOM_CLASSES:
        got = metrics["classes"][name]
        y, prob = predictions[f"label_{name}"].to_numpy(int), predictions[f"prob_{name}"].to_numpy()
        pred = prob >= got["threshold"]
        assert got["auc"] == pytest.approx(skm.roc_auc_score(y, prob), abs=1e-6)
        assert got["ap"] == pytest.approx(skm.average_precision_score(y, prob), abs=1e-6)
        assert got["sensitivity"] == pytest.approx(skm.recall_score(y, pred), abs=1e-6)
        assert got["specificity"] == pytest.approx(skm.recall_score(1 - y, ~pred), abs=1e-6)
        assert got["confusion"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
        assert got["auc_ci"][0] <= got["auc"] <= got["auc_ci"][1]
    assert metrics["mean_auc"] == pytest.approx(np.mean([metrics["classes"][c]["auc"] for c in PHANTOM_CLASSES]))


def test_the_phantom_run_separates_its_test_split(evaluated):
    metrics = read_metrics(evaluated / "eval" / "test")
    assert metrics["mean_auc"] > 0.7
    assert metrics["mean_auc_ci"][0] < metrics["mean_auc"] < metrics["mean_auc_ci"][1]


def flip_labels(records: Path, split: str) -> None:
    """Rewrite ``split``'s shards with positive and negative states swapped."""
    import tensorflow as tf

    from cxr_tf.records import features, info

    for shard in info.shard_paths(str(records), info.RecordsInfo.load(str(records)), split):
        examples = [tf.train.Example.FromString(raw.numpy()) for raw in tf.data.TFRecordDataset(shard)]
        with tf.io.TFRecordWriter(shard) as writer:
            for example in examples:
                states = example.features.feature[features.LABELS_KEY].int64_list.value
                states[:] = [1 - s if s in (0, 1) else s for s in states]
                writer.write(example.SerializeToString())


def test_thresholds_are_chosen_on_val_whatever_the_test_labels(evaluated, phantom_records, tmp_path):
    records = Path(shutil.copytree(phantom_records, tmp_path / "records"))
    flip_labels(records, "test")
    run = copy_run(evaluated, tmp_path)
    assert cli.run(evaluate_cli.main, ["--run", str(run), "--records", str(records), "--resamples", "0",
                                       "--out", str(tmp_path / "flipped")]) == 0
    assert json.loads((run / "thresholds.json").read_text()) == json.loads((evaluated / "thresholds.json").read_text())
    assert read_metrics(tmp_path / "flipped")["mean_auc"] < 0.3  # the flipped labels were read


def test_noise_sweep_is_clean_at_level_0_and_heavy_noise_lowers_auc(evaluated):
    metrics = read_metrics(evaluated / "eval" / "test")
    clean, heavy = metrics["noise_sweep"]
    assert (clean["noise"], clean["level"], heavy["level"]) == ("gaussian", 0.0, 255.0)
    assert clean["mean_auc"] == pytest.approx(metrics["mean_auc"], abs=1e-12)
    assert clean["auc"] == pytest.approx({c: metrics["classes"][c]["auc"] for c in PHANTOM_CLASSES}, abs=1e-12)
    assert heavy["mean_auc"] < metrics["mean_auc"] - 0.05
    table = pd.read_csv(evaluated / "eval" / "test" / "noise_sweep.csv")
    assert table["level"].tolist() == [0.0, 255.0]
    np.testing.assert_allclose(table["mean_auc"], [clean["mean_auc"], heavy["mean_auc"]], atol=1e-6)


@pytest.mark.parametrize("task, classes, exclusive, kept", [("multilabel", ["a", "b", "c"], False, 23),
                                                              ("multiclass", ["a", "c"], False, 15),
                                                              ("multilabel", ["a", "c"], True, 15)])
def test_paths_and_patients_are_read_in_the_order_make_dataset_yields_images(tmp_path, task, classes, exclusive,
                                                                             kept):
    from cxr_tf.pipeline import make_dataset

    # Image i is a flat gray i * 10 named img{i}.png; 10 shards exceed make_dataset's 8 interleaved readers.
    n = 23
    images = [np.full((8, 8), 10 * i, np.uint8) for i in range(n)]
    states = np.eye(3, dtype=int)[np.arange(n) % 3]
    records = write_records(tmp_path, images, states, ["a", "b", "c"], task=task, split="test", shards=10)
    ids = evaluate.example_ids(records, "test", classes, exclusive_classes=exclusive)
    paths, patients = ids["path"], ids["patient"]
    ds = make_dataset(records, "test", classes=classes, image_size=8, channels="gray1", batch_size=5,
                      shuffle=False, deterministic=True, exclusive_classes=exclusive)
    gray = np.concatenate([x.numpy().mean(axis=(1, 2, 3)) for x, _, _ in ds])
    index = np.array([int(p.removeprefix("img").removesuffix(".png")) for p in paths])
    assert len(index) == kept
    np.testing.assert_allclose(gray, 10 * index, atol=0.5)
    assert list(patients) == [f"p{i}" for i in index]


@pytest.fixture(scope="module")
def multiclass_run(tmp_path_factory) -> Path:
    """A 3-epoch baseline_cnn run on three classes of flat gray images (dark, mid, bright) at 32 px."""
    from cxr_tf import fit

    root = tmp_path_factory.mktemp("multiclass")
    rng = np.random.default_rng(0)
    for split, n in (("train", 48), ("val", 12), ("test", 15)):
        kinds = np.arange(n) % 3
        images = [np.clip(rng.normal(60 + 70 * k, 10, (32, 32)), 0, 255).astype(np.uint8) for k in kinds]
        records = write_records(root, images, np.eye(3, dtype=int)[kinds], ["dark", "mid", "bright"],
                                task="multiclass", split=split)
    run = root / "run"
    assert cli.run(fit.main, ["--records", records, "--model", "baseline_cnn", "--weights", "none",
                              "--image-size", "32", "--channels", "gray3", "--loss", "categorical_ce",
                              "--batch-size", "8", "--epochs", "3", "--no-augment", "--schedule", "constant",
                              "--out", str(run)]) == 0
    return run


def test_a_multiclass_run_gets_accuracy_and_a_k_by_k_confusion_matrix(multiclass_run, capsys):
    assert cli.run(evaluate_cli.main, ["--run", str(multiclass_run), "--resamples", "50"]) == 0
    assert "accuracy" in capsys.readouterr().out
    out = multiclass_run / "eval" / "test"
    metrics, predictions = read_metrics(out), pd.read_csv(out / "predictions.csv")
    names = ["dark", "mid", "bright"]
    truth = predictions[[f"label_{c}" for c in names]].to_numpy().argmax(axis=1)
    guess = predictions[[f"prob_{c}" for c in names]].to_numpy().argmax(axis=1)
    assert metrics["task"] == "multiclass" and metrics["threshold"]["method"] == "argmax"
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth, guess), abs=1e-6)
    assert metrics["confusion"] == skm.confusion_matrix(truth, guess, labels=[0, 1, 2]).tolist()
    assert np.sum(metrics["confusion"], axis=1).tolist() == [5, 5, 5]
    assert not (multiclass_run / "thresholds.json").exists()
    assert "val_accuracy" in (multiclass_run / "history.csv").read_text().splitlines()[0]  # fit's monitor


def test_a_fixed_threshold_is_applied_as_given_and_the_table_is_printed(scratch_run, tmp_path, capsys):
    assert cli.run(evaluate_cli.main, ["--run", str(scratch_run), "--threshold", "0.5", "--resamples", "0",
                                       "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in PHANTOM_CLASSES) and "mean AUC" in printed
    metrics = read_metrics(tmp_path)
    assert metrics["threshold"] == {"method": 0.5, "split": None}
    assert {entry["threshold"] for entry in metrics["classes"].values()} == {0.5}
    assert not (scratch_run / "thresholds.json").exists()  # a fixed number is not an operating point


@pytest.mark.parametrize("extra, message", [
    (["--split", "holdout"], "no split 'holdout'"),
    (["--threshold", "median"], "--threshold 'median'"),
    (["--noise-sweep", "gaussian"], "expected NAME:LEVEL,LEVEL"),
    (["--noise-sweep", "gaussian:1,loud"], "--noise-sweep 'gaussian:1,loud'"),
    (["--noise-sweep", "speckle:1"], "unknown noise 'speckle'"),
    (["--noise-sweep", "gaussian:-3"], "must be in"),
])
def test_cli_mistakes_are_one_line_errors(scratch_run, extra, message, capsys):
    assert cli.run(evaluate_cli.main, ["--run", str(scratch_run), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_run_without_a_model_and_records_without_its_classes_are_one_line_errors(scratch_run, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.toml", "dataset.json"):
        shutil.copy(scratch_run / name, unfinished / name)
    assert cli.run(evaluate_cli.main, ["--run", str(unfinished)]) == 2
    assert "no best.keras" in capsys.readouterr().err
    other = write_records(tmp_path, [np.zeros((8, 8), np.uint8)], [[1, 0]], ["Nodule", "Mass"], split="test")
    assert cli.run(evaluate_cli.main, ["--run", str(scratch_run), "--records", other]) == 2
    err = capsys.readouterr().err
    assert "no class(es) Cardiomegaly, Effusion, Edema" in err and err.count("\n") == 1
