"""Run reports and comparisons: files written, HTML self-contained, tables quote metrics.json, bands hold curves.

The evaluations are synthetic (written here in the schema of ``python -m cxr_tf.evaluate``: 200 images,
probabilities correlated with the labels); the run directories are copies of the real ``phantom_run``.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from tests.conftest import PHANTOM_CLASSES

from cxr_tf import cli, report
from cxr_tf.errors import UserError
from cxr_tf.evaluation import metrics as metrics_lib
from cxr_tf.evaluation import plots
from cxr_tf.evaluation.report import write_report
from cxr_tf.records.info import RecordsInfo

RESAMPLES = 200


def write_evaluation(run: Path, *, multiclass: bool = False, noise_sweep: bool = False,
                     masked: int = 0, split: str = "test", seed: int = 0) -> dict:
    """``eval/<split>/metrics.json`` and ``predictions.csv`` as evaluate writes them; returns the metrics.

    ``masked``: the first ``masked`` labels of the first class are empty (U-Ignore).
    """
    rng = np.random.default_rng(seed)
    n, k = 200, len(PHANTOM_CLASSES)
    patients = np.array([f"p{i:03d}" for i in rng.integers(0, 120, n)])
    if multiclass:
        y = np.eye(k, dtype=int)[rng.integers(0, k, n)]
        logits = 2.0 * y + rng.normal(0, 1, (n, k))
        prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        out = metrics_lib.multiclass_metrics(y, prob, patients, PHANTOM_CLASSES, resamples=RESAMPLES)
    else:
        y = (rng.random((n, k)) < [0.3, 0.2, 0.4]).astype(int)
        prob = np.clip(0.35 * y + rng.normal(0.35, 0.18, y.shape), 0, 1)
        mask = np.ones_like(y)
        mask[:masked, 0] = 0
        thresholds = metrics_lib.choose_thresholds(y, prob, "youden", mask)
        out = metrics_lib.multilabel_metrics(y, prob, patients, PHANTOM_CLASSES, thresholds, mask=mask,
                                             resamples=RESAMPLES)
    threshold = {"method": "argmax", "split": None} if multiclass else {"method": "youden", "split": "val"}
    out.setdefault("mean_auc_ci", None)
    out.update(run=str(run), split=split, records="records/phantoms", model="cnn5", examples=n,
               patients=len(set(patients)), threshold=threshold,
               bootstrap={"resamples": RESAMPLES, "seed": 0, "level": 0.95, "unit": "patient"})
    if noise_sweep:
        out["noise_sweep"] = [{"noise": noise, "level": level, "mean_auc": 0.9 - 0.1 * i,
                               "mean_auc_ci": [0.85 - 0.1 * i, 0.95 - 0.1 * i],
                               "auc": {c: 0.9 - 0.1 * i for c in PHANTOM_CLASSES}, "accuracy": None}
                              for noise in ("poisson", "gaussian") for i, level in enumerate((0.0, 0.5, 1.0))]
    eval_dir = run / "eval" / split
    eval_dir.mkdir(parents=True)
    (eval_dir / "metrics.json").write_text(json.dumps(out, indent=2))
    table = {"path": [f"img{i:04d}.png" for i in range(n)], "patient": patients}
    for j, name in enumerate(PHANTOM_CLASSES):
        table[f"label_{name}"] = pd.array(y[:, j], dtype="Int64")
        table[f"prob_{name}"] = prob[:, j].round(6)
    frame = pd.DataFrame(table)
    frame.loc[: masked - 1, f"label_{PHANTOM_CLASSES[0]}"] = pd.NA
    frame.to_csv(eval_dir / "predictions.csv", index=False)
    return out


def copy_of(phantom_run: Path, dest: Path) -> Path:
    """A writable copy of the real phantom run (without its TensorBoard logs)."""
    return Path(shutil.copytree(phantom_run, dest, ignore=shutil.ignore_patterns("tb")))


@pytest.fixture
def copy_run(phantom_run, tmp_path):
    return lambda name: copy_of(phantom_run, tmp_path / name)


@dataclass(frozen=True)
class Written:
    run: Path
    metrics: dict
    paths: tuple[Path, Path]
    md: str
    html: str


@pytest.fixture(scope="module")
def written(phantom_run, tmp_path_factory) -> Written:
    """One multilabel report with a noise sweep, written once and read by several tests."""
    run = copy_of(phantom_run, tmp_path_factory.mktemp("report") / "run")
    metrics = write_evaluation(run, noise_sweep=True)
    md_path, html_path = write_report(run)
    return Written(run, metrics, (md_path, html_path), md_path.read_text(), html_path.read_text())


def best_epoch(run: Path, monitor: str) -> int:
    with open(run / "history.csv", newline="") as fh:
        values = [float(row[monitor]) for row in csv.DictReader(fh)]
    return values.index(max(values)) + 1


def md_row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def f3(value: float) -> str:
    return f"{value:.3f}"


def with_ci(value: float, ci: list[float]) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def test_report_writes_markdown_html_and_one_png_per_figure(written):
    run = written.run
    assert written.paths == (run / "report.md", run / "report.html")
    for name in ("roc", "pr", "confusion", "training", "noise_sweep"):
        png = run / "report_files" / f"{name}.png"
        assert png.read_bytes().startswith(b"\x89PNG"), name
        assert f"](report_files/{name}.png)" in written.md


def test_html_is_self_contained(written):
    sources = re.findall(r"""src\s*=\s*["']([^"']*)""", written.html)
    assert len(sources) == 5 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"<link|https?://|url\(", written.html)
    inlined = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    assert (written.run / "report_files" / "roc.png").read_bytes() in inlined


def test_tables_quote_the_numbers_of_metrics_json(written):
    md, m = written.md, written.metrics
    for name, c in m["classes"].items():
        assert md_row(name, str(c["n"]), str(c["positives"]), with_ci(c["auc"], c["auc_ci"]),
                      with_ci(c["ap"], c["ap_ci"]), f3(c["threshold"]),
                      *(with_ci(c[rate], c[f"{rate}_ci"]) for rate in ("sensitivity", "specificity", "ppv", "npv",
                                                                       "f1"))) in md
        assert f"<td>{with_ci(c['auc'], c['auc_ci'])}</td>" in written.html
    assert f"Mean AUC: {with_ci(m['mean_auc'], m['mean_auc_ci'])}" in md
    assert md_row("micro", f3(m["micro"]["precision"]), f3(m["micro"]["recall"]), f3(m["micro"]["f1"])) in md


def test_summary_gives_model_parameters_best_epoch_and_time_per_epoch(written):
    run, md = written.run, written.md
    params = json.loads((run / "params.json").read_text())["train"]
    timing = json.loads((run / "timing.json").read_text())
    assert md_row("model", "cnn5 (weights: none)") in md
    assert md_row("parameters", f"train: {params['total']:,} total, {params['trainable']:,} trainable") in md
    assert f"| best epoch | {best_epoch(run, 'val_mean_auc')} (val_mean_auc " in md
    assert md_row("time per epoch", f"{timing['mean_seconds_per_epoch']:.1f} s") in md
    assert md_row("channels", "enhance") in md


def test_noise_sweep_table_has_a_row_per_noise_and_level(written):
    for e in written.metrics["noise_sweep"]:
        assert md_row(e["noise"], f"{e['level']:g}", with_ci(e["mean_auc"], e["mean_auc_ci"]),
                      *(f3(e["auc"][c]) for c in PHANTOM_CLASSES)) in written.md


def test_roc_band_contains_the_point_curve():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    score = np.clip(0.3 * y + rng.normal(0.35, 0.2, 300), 0, 1).round(2)  # rounded: tie groups
    band = plots.roc_band(y, score, rng.integers(0, 150, 300), resamples=300, seed=0)
    fpr, tpr, _ = skm.roc_curve(y, score, drop_intermediate=False)
    assert band.tpr == pytest.approx(tpr[np.searchsorted(fpr, band.fpr, side="right") - 1])
    assert np.all(band.low <= band.tpr) and np.all(band.tpr <= band.high)
    assert np.max(band.high - band.low) > 0.1


def test_comparison_lists_both_runs_with_their_parameters_and_epochs_to_best(copy_run, tmp_path, capsys):
    a, b = copy_run("a"), copy_run("b")
    write_evaluation(a)
    write_evaluation(b, seed=1)
    (b / "params.json").write_text(json.dumps({"phase1": {"total": 5000, "trainable": 200},
                                               "phase2": {"total": 5000, "trainable": 5000}}))
    history = pd.read_csv(b / "history.csv")
    history["val_mean_auc"] = [0.95, 0.5, 0.6]
    history.to_csv(b / "history.csv", index=False)
    out = tmp_path / "cmp" / "compare.md"
    assert cli.run(report.main, [str(a), str(b), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.with_suffix(".csv").read_text().splitlines()))
    assert [r["run"] for r in rows] == [str(a), str(b)]
    params_a = json.loads((a / "params.json").read_text())["train"]
    assert (int(rows[0]["parameters"]), int(rows[0]["trainable"])) == (params_a["total"], params_a["trainable"])
    assert (int(rows[1]["parameters"]), int(rows[1]["trainable"])) == (5000, 5000)
    assert [int(float(r["epochs_to_best"])) for r in rows] == [best_epoch(a, "val_mean_auc"), 1]
    md = out.read_text()
    assert f"| {b} | cnn5 | 5,000 | 200 then 5,000 |" in md
    assert {f"auc_{c}" for c in PHANTOM_CLASSES} <= set(rows[0])
    assert str(a) in capsys.readouterr().out
    assert (a / "report.html").exists() and (b / "report.html").exists()


def test_missing_evaluation_is_a_one_line_error(copy_run, capsys):
    run = copy_run("run")
    assert cli.run(report.main, [str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"python -m cxr_tf.evaluate --run {run}" in err
    with pytest.raises(UserError, match="eval/val/metrics.json"):
        write_report(run, split="val")


def test_multiclass_report_renders_its_confusion_matrix(copy_run):
    run = copy_run("run")
    dataclasses.replace(RecordsInfo.load(str(run)), task="multiclass").save(str(run))
    history = pd.read_csv(run / "history.csv").rename(columns={"val_mean_auc": "val_accuracy"})
    history.to_csv(run / "history.csv", index=False)
    m = write_evaluation(run, multiclass=True)
    md = write_report(run)[0].read_text()
    assert md_row("true \\ predicted", *PHANTOM_CLASSES) in md
    for name, row in zip(PHANTOM_CLASSES, m["confusion"]):
        assert md_row(name, *map(str, row)) in md
    assert f"Accuracy: {m['accuracy']:.3f}" in md
    assert f"| best epoch | {best_epoch(run, 'val_accuracy')} (val_accuracy " in md
    assert (run / "report_files" / "confusion.png").exists()


def test_a_report_renders_with_masked_labels(copy_run):
    run = copy_run("run")
    m = write_evaluation(run, masked=50)
    md = write_report(run)[0].read_text()
    assert f"| {PHANTOM_CLASSES[0]} | 150 | " in md
    assert f"Mean AUC: {f3(m['mean_auc'])}\n" in md  # no interval: the bootstrap needs every label
    assert (run / "report_files" / "roc.png").exists()


def test_comparison_directory_holds_paired_delta_auc_ci_and_delong_p(copy_run, tmp_path):
    from cxr_tf.evaluation.compare import delong_test

    a, b = copy_run("a"), copy_run("b")
    write_evaluation(a)
    write_evaluation(b)
    # Run B: the same images and labels, its scores of the first class diluted with noise.
    table = pd.read_csv(b / "eval" / "test" / "predictions.csv")
    name = PHANTOM_CLASSES[0]
    table[f"prob_{name}"] = (table[f"prob_{name}"] + np.random.default_rng(5).normal(0, 0.3, len(table))).round(6)
    table = table.drop(index=range(20))  # B saw fewer images
    table.to_csv(b / "eval" / "test" / "predictions.csv", index=False)
    out = tmp_path / "cmp"
    assert cli.run(report.main, [str(a), str(b), "--out", str(out), "--resamples", "200"]) == 0
    comparison = json.loads((out / "comparison.json").read_text())
    (pair,) = comparison["pairs"]
    assert (pair["run_a"], pair["run_b"], pair["shared_images"]) == (str(a), str(b), 180)
    assert set(pair["classes"]) == set(PHANTOM_CLASSES)
    shared = pd.read_csv(a / "eval" / "test" / "predictions.csv").merge(table, on="path", suffixes=("_a", "_b"))
    for c in PHANTOM_CLASSES:
        entry = pair["classes"][c]
        delta, p = delong_test(shared[f"label_{c}_a"], shared[f"prob_{c}_a"], shared[f"prob_{c}_b"])
        assert (entry["n"], entry["delta_auc"], entry["p_delong"]) == (180, pytest.approx(delta), pytest.approx(p))
        low, high = entry["delta_auc_ci"]
        assert low <= entry["delta_auc"] <= high
        if c != name:  # identical scores: every shared resample gives the same AUC to both runs
            assert (entry["delta_auc"], low, high, entry["p_delong"]) == (0.0, 0.0, 0.0, 1.0)
    assert pair["classes"][name]["delta_auc"] > 0
    md = (out / "comparison.md").read_text()
    assert "dAUC [95 % CI]" in md and "p (DeLong)" in md and (out / "comparison.csv").exists()


@pytest.mark.slow
def test_the_demo_style_report_shows_every_section(phantom_run, phantom_records, tmp_path):
    from cxr_tf import evaluate as evaluate_cli, explain as explain_cli

    run = copy_of(phantom_run, tmp_path / "run")
    assert cli.run(evaluate_cli.main, ["--run", str(run), "--resamples", "100", "--gallery", "1"]) == 0
    assert cli.run(explain_cli.main, ["--run", str(run), "--records", str(phantom_records), "--limit", "8",
                                      "--out", str(run / "explain")]) == 0
    assert cli.run(report.main, [str(run)]) == 0
    md = (run / "report.md").read_text()
    headings = [line.removeprefix("## ") for line in md.splitlines() if line.startswith("## ")]
    assert headings == ["Run", "Data", "Metrics (test split)", "Curves and confusion", "Calibration",
                        "Operating points", "Subgroups", "Grad-CAM", "Errors", "Training", "Provenance"]
    assert md.splitlines()[2].startswith("> **Synthetic data")
    assert "By sex:" in md and "By age band:" in md and "| overall |" in md
    assert "python -m cxr_tf.fit --records" in md and f"python -m cxr_tf.evaluate --run {run}" in md
    assert "report_files/reliability.png" in md and "eval/test/errors/" in md and "explain/" in md
    html_text = (run / "report.html").read_text()
    assert 'class="banner"' in html_text and "src=\"report_files" not in html_text
