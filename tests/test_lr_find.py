"""python -m cxr_tf.lr_find: a geometric learning-rate sweep on fit's set-up, its stop rule and its suggestions."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest

from cxr_tf import cli, cli_options, lr_find
from cxr_tf.training.lr_find import RangeTest, geometric_rates, suggest
from tests.conftest import PHANTOM_CLASSES

REPO = Path(__file__).resolve().parents[1]


def lr_find_args(records: Path, out: Path, *extra: str) -> list[str]:
    """A tiny range test: cnn5 on 32-px phantoms, batch 16."""
    return ["--records", str(records), "--model", "cnn5", "--weights", "none", "--classes", *PHANTOM_CLASSES,
            "--image-size", "32", "--enhance", "--batch-size", "16", "--out", str(out), *extra]


def run_cli(argv: list[str]) -> tuple[int, str]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.run(lr_find.main, argv)
    return code, stdout.getvalue()


def read_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


@pytest.fixture(scope="module")
def sweep(phantom_records, tmp_path_factory) -> tuple[Path, str]:
    """A 30-step range test from 1e-5 to 1e-2 (too low to diverge): (output directory, stdout)."""
    out = tmp_path_factory.mktemp("lr_find") / "sweep"
    code, stdout = run_cli(lr_find_args(phantom_records, out, "--steps", "30", "--min-lr", "1e-5",
                                        "--max-lr", "1e-2"))
    assert code == 0
    return out, stdout


@pytest.mark.slow
def test_the_rate_rises_geometrically_from_min_lr_to_max_lr_one_step_per_batch(sweep):
    out, _ = sweep
    curve = read_csv(out / "lr_find.csv")
    assert list(curve["step"]) == list(range(30))
    np.testing.assert_allclose(curve["lr"], geometric_rates(1e-5, 1e-2, 30), rtol=1e-5)
    np.testing.assert_allclose(curve["lr"][1:] / curve["lr"][:-1], 1000 ** (1 / 29), rtol=1e-4)
    assert np.all(np.isfinite(curve["loss"])) and np.all(curve["loss"] > 0)


@pytest.mark.slow
def test_the_plot_is_written_and_the_suggestion_lies_within_the_tested_range(sweep):
    out, stdout = sweep
    assert (out / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    match = re.search(r"suggested: --base-lr (\S+) --lr (\S+)", stdout)
    assert match, stdout
    base_lr, lr = float(match[1]), float(match[2])
    assert 1e-5 <= base_lr <= lr <= 1e-2


@pytest.mark.slow
def test_a_diverging_loss_stops_the_test_early(phantom_records, tmp_path):
    code, stdout = run_cli(lr_find_args(phantom_records, tmp_path, "--steps", "20", "--min-lr", "10",
                                        "--max-lr", "1e4", "--smooth", "0"))
    assert code == 0
    curve = read_csv(tmp_path / "lr_find.csv")
    assert 2 <= len(curve["lr"]) < 20
    last = curve["smoothed_loss"][-1]
    assert not np.isfinite(last) or last > 4 * curve["smoothed_loss"].min()
    assert "diverged" in stdout


def test_suggest_marks_the_steepest_descent_and_a_tenth_of_the_minimum_with_a_quarter_below_it():
    rates = geometric_rates(1e-6, 1.0, 121)  # 20 steps per decade
    x = np.log10(rates)
    # Falls fastest at 1e-3 (the logistic's centre), lowest at 1e-1, diverges beyond.
    loss = 1.0 / (1.0 + np.exp(3.0 * (x + 3.0))) + 2.0 * np.maximum(0.0, x + 1.0) ** 2
    suggestion = suggest(RangeTest(rates, loss, loss, steps=121))
    assert suggestion.steepest == pytest.approx(1e-3, rel=1e-6)
    assert suggestion.minimum == pytest.approx(1e-1, rel=1e-6)
    assert suggestion.lr == pytest.approx(1e-2, rel=1e-6)
    assert suggestion.base_lr == pytest.approx(2.5e-3, rel=1e-6)


def test_suggestions_are_clipped_to_the_tested_range_when_the_loss_only_rises():
    rates = geometric_rates(1e-4, 1e-2, 10)
    rising = np.linspace(1.0, 2.0, 10)
    suggestion = suggest(RangeTest(rates, rising, rising, steps=10))
    assert suggestion.steepest == suggestion.minimum == suggestion.lr == suggestion.base_lr == pytest.approx(1e-4)


@pytest.mark.parametrize("flags, named", [
    (["--min-lr", "1", "--max-lr", "0.1"], "--max-lr"),
    (["--min-lr", "0"], "--min-lr"),
    (["--steps", "1"], "--steps"),
    (["--smooth", "1"], "--smooth"),
    (["--stop-factor", "1"], "--stop-factor"),
    ([], "dataset.json does not exist"),
])
def test_impossible_options_and_missing_records_are_one_line_errors(flags, named, tmp_path, capsys):
    code, _ = run_cli(lr_find_args(tmp_path / "records", tmp_path / "out", *flags))
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "\n" not in err and named in err, err


def test_fit_recipes_are_lr_find_configs_too():
    cfg = cli_options.parse(lr_find.LrFindConfig, ["--recipe", str(REPO / "pipelines" / "demo_phantoms.toml"),
                                                    "--steps", "50"], recipes=True)
    assert (cfg.model, cfg.lr, cfg.steps, cfg.max_lr) == ("cnn5", 3e-3, 50, 1.0)
