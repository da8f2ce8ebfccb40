"""python -m cxr_tf.demo, in a reduced size: every step runs, the README's promises hold, a re-run resumes."""

from __future__ import annotations

import json
import time

import pytest

from cxr_tf import cli, demo

# 300 phantoms at 64 px and two epochs: the same steps as the full demo in about a tenth of its time.
SMALL = ["--n", "300", "--size", "64", "--image-size", "64", "--epochs", "2"]


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    return out


@pytest.mark.slow
def test_the_demo_runs_every_step_and_prints_the_auc_table_and_the_report(small_demo, capsys):
    assert cli.run(demo.main, ["--out", str(small_demo), *SMALL]) == 0
    printed = capsys.readouterr().out
    for module in ("synth", "build_records", "fit", "evaluate", "explain", "report"):
        assert f"$ python -m cxr_tf.{module} " in printed
    run = small_demo / "run"
    metrics = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert set(metrics["classes"]) == set(demo.FINDINGS)
    assert metrics["mean_auc"] > 0.6  # two epochs at 64 px; the full demo reaches far more (README)
    assert "mean AUC" in printed and printed.rstrip().endswith(f"report: {run / 'report.html'}")
    hit_rate = json.loads((run / "explain" / "hit_rate.json").read_text())
    assert hit_rate["Cardiomegaly"]["boxes"] > 0
    assert (run / "report.md").exists() and (run / "thresholds.json").exists()


@pytest.mark.slow
def test_a_finished_demo_rerun_trains_nothing_again(small_demo, capsys):
    history = (small_demo / "run" / "history.csv").read_text()
    start = time.perf_counter()
    assert cli.run(demo.main, ["--out", str(small_demo), *SMALL]) == 0
    assert (small_demo / "run" / "history.csv").read_text() == history
    assert "finished earlier" in capsys.readouterr().out
    assert time.perf_counter() - start < 120


def test_demo_flags_reach_its_steps(tmp_path):
    cfg = demo.DemoConfig(out=tmp_path, n=10, size=48, epochs=1, image_size=32, seed=3)
    argv = {module: args for module, _, args in demo.steps(cfg)}
    assert argv["synth"][argv["synth"].index("--n") + 1] == "10"
    assert ["--set", "epochs=1"] == argv["fit"][argv["fit"].index("epochs=1") - 1:][:2]
    assert f"records={tmp_path / 'records'}" in argv["fit"] and "image_size=32" in argv["fit"]
    assert argv["evaluate"] == ["--run", str(tmp_path / "run"), "--split", "test"]
