"""A discoverable CLI: python -m cxr_tf lists the verbs; every verb has --help with defaults, --version,
--verbose/--quiet and the --list-KIND flags of what it names; TensorFlow's start-up noise stays hidden."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys

import pytest

import cxr_tf
from cxr_tf import __main__ as entry
from cxr_tf import cli, cli_options, listing, reporting
from cxr_tf.training.fit_config import FitConfig


def output_of(main, argv, capsys) -> str:
    """What ``main(argv)`` prints before exiting the way --help/--version/--list-* do (status 0)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code in (0, None)
    return capsys.readouterr().out


@pytest.fixture(autouse=True)
def normal_verbosity():
    yield
    reporting.configure(reporting.Verbosity.NORMAL)


def test_python_m_cxr_tf_alone_prints_every_verb_and_how_to_list():
    out = subprocess.run([sys.executable, "-m", "cxr_tf"], capture_output=True, text=True, check=True).stdout
    verbs = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert verbs == [*entry.VERBS, "list"]
    assert "list KIND" in out and "models, datasets, recipes, losses" in out


@pytest.mark.parametrize("verb", entry.VERBS)
def test_every_verb_has_version_verbosity_and_shows_its_defaults(verb, capsys):
    main = importlib.import_module(f"cxr_tf.{verb}").main
    assert output_of(main, ["--version"], capsys).strip() == f"cxr_tf {cxr_tf.__version__}"
    help_text = " ".join(output_of(main, ["--help"], capsys).split())
    assert "--verbose" in help_text and "--quiet" in help_text
    assert "(default" in help_text or "(required)" in help_text  # export's flags are all required


def test_help_shows_the_dataclass_defaults_and_required_flags(capsys):
    help_text = " ".join(output_of(entry.main, ["fit", "--help"], capsys).split())
    assert "--image-size IMAGE_SIZE model input side, pixels (between 16 and 4096) (default: 224)" in help_text
    assert "(default: false)" in help_text.split("--augment, --no-augment")[1][:200]  # booleans read as in a recipe
    assert "records directory written by build_records (required)" in help_text


@pytest.mark.parametrize("verb, kinds", [
    ("fit", {"models", "losses", "recipes"}),
    ("lr_find", {"models", "losses", "recipes"}),
    ("build_records", {"datasets"}),
    ("manifest", {"datasets"}),
    ("predict", set()),
])
def test_a_verb_has_the_list_flags_of_what_it_names(verb, kinds, capsys):
    help_text = output_of(importlib.import_module(f"cxr_tf.{verb}").main, ["--help"], capsys)
    assert {kind for kind in listing.KINDS if f"--list-{kind}" in help_text} == kinds


def test_list_flags_and_the_list_verb_print_the_same_registry_names(capsys):
    from cxr_tf.datasets import DATASETS
    from cxr_tf.training.losses import LOSSES

    from cxr_tf import build_records, fit

    losses = output_of(fit.main, ["--list-losses"], capsys)
    assert [line.split()[0] for line in losses.splitlines()] == LOSSES.names()
    assert entry.main(["list", "losses"]) == 0 and capsys.readouterr().out == losses
    datasets = output_of(build_records.main, ["--list-datasets"], capsys)
    assert [line.split()[0] for line in datasets.splitlines()] == DATASETS.names()
    recipes = output_of(fit.main, ["--list-recipes", "--records", "ignored"], capsys)
    assert "s5_kermany2_resnet50" in recipes and "demo_phantoms" in recipes


def test_an_unknown_verb_or_kind_is_a_one_line_usage_error(capsys):
    assert cli.run(entry.main, ["fitt"]) == 2
    assert cli.run(entry.main, ["list", "modles"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and "unknown verb 'fitt'" in errors[0] and errors[1] == (
        "error: python -m cxr_tf list: unknown kind 'modles' (did you mean 'models'?); "
        "valid: models, datasets, recipes, losses")


def test_a_verb_runs_through_python_m_cxr_tf(capsys):
    assert output_of(entry.main, ["synth", "--version"], capsys).startswith("cxr_tf ")


@pytest.mark.parametrize("flag, level", [("--quiet", reporting.Verbosity.QUIET), ("-q", reporting.Verbosity.QUIET),
                                         ("--verbose", reporting.Verbosity.VERBOSE), ("-v", reporting.Verbosity.VERBOSE)])
def test_verbosity_flags_set_the_reporting_level_and_no_flag_keeps_it(flag, level):
    cli_options.parse(FitConfig, ["--records", "r", flag])
    assert reporting.verbosity() == level
    cli_options.parse(FitConfig, ["--records", "r"])  # a step the demo runs without the flag keeps the level
    assert reporting.verbosity() == level
    assert logging.getLogger("cxr_tf").isEnabledFor(logging.INFO) == (level != reporting.Verbosity.QUIET)


def test_quiet_and_verbose_together_are_a_usage_error():
    with pytest.raises(cxr_tf.errors.UserError, match="not allowed with"):
        cli_options.parse(FitConfig, ["--records", "r", "--quiet", "--verbose"])


@pytest.mark.parametrize("recipe", ["s5_kermany2_resnet50", "s5_kermany2_resnet50.toml",
                                    "pipelines/s5_kermany2_resnet50.toml"])
def test_a_shipped_recipe_is_found_by_name_from_any_directory(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = cli_options.parse(FitConfig, ["--recipe", recipe, "--records", "r"], recipes=True)
    assert (cfg.model, cfg.batch_size) == ("resnet50", 80)


def test_a_recipe_file_wins_over_a_shipped_recipe_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s5_kermany2_resnet50").write_text('records = "mine"\nmodel = "cnn5"\n')
    assert cli_options.parse(FitConfig, ["--recipe", "s5_kermany2_resnet50"], recipes=True).model == "cnn5"


def test_an_unknown_recipe_suggests_the_closest_shipped_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cxr_tf.errors.UserError, match="did you mean 's5_kermany2_resnet50'.*list recipes"):
        cli_options.parse(FitConfig, ["--recipe", "s5_kermany_resnet50"], recipes=True)


def tensorflow_stderr(env_level: str | None) -> str:
    """stderr of a command that loads TensorFlow and runs an op (the moment CUDA is probed), with
    TF_CPP_MIN_LOG_LEVEL set to ``env_level`` or unset."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if env_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = env_level
    command = ("import sys; from cxr_tf import cli\n"
               "def main(argv):\n    import tensorflow as tf\n    print(int(tf.constant(20) + 1))\n"
               "sys.exit(cli.run(main, []))")
    done = subprocess.run([sys.executable, "-c", command], env=env, capture_output=True, text=True, check=True)
    assert done.stdout == "21\n"
    return done.stderr


@pytest.mark.slow
def test_tensorflow_start_up_lines_are_hidden_unless_the_user_sets_the_log_level():
    assert tensorflow_stderr(None) == ""
    # A user who sets the level sees TensorFlow's lines again (and this test can see them at all).
    assert "I0000" in tensorflow_stderr("0")


def test_an_nvidia_gpu_that_tensorflow_cannot_use_is_reported(monkeypatch, caplog):
    import tensorflow as tf

    monkeypatch.setattr(cli, "_nvidia_driver", lambda: "/dev/nvidia0")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with caplog.at_level(logging.WARNING, logger="cxr_tf"):
        cli._check_gpu()
    assert "NVIDIA GPU (/dev/nvidia0) but TensorFlow found none" in caplog.text
    caplog.clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # GPUs hidden on purpose: nothing to report
    cli._check_gpu()
    assert caplog.text == ""
