"""Every choice set is defined once (a registry or a ``Choices``) and checked one way: a misspelt value, given
as a flag or as a recipe key, is one line naming the flag, the closest valid name and all of them (exit 2);
``--help`` shows the names from the same definition; the library never imports the argparse side."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cxr_tf import build_records, cli, fit, labels
from cxr_tf.errors import UserError
from cxr_tf.io import imaging
from cxr_tf.registry import Choices, Registry, lazy
from cxr_tf.training.strategy import STRATEGIES

FIT = "python -m cxr_tf.fit"


def test_a_miss_names_where_the_closest_name_and_every_valid_one():
    views = Choices("view", ("frontal", "lateral"))
    with pytest.raises(UserError) as err:
        views.check("frontl", "--views")
    assert str(err.value) == "--views: unknown view 'frontl' (did you mean 'frontal'?); valid: frontal, lateral"
    assert views.check("lateral") == "lateral" and "lateral" in views and views.names() == ["frontal", "lateral"]


def test_a_registry_and_a_lazy_set_miss_the_same_way_as_choices():
    heads = Registry("head")
    heads.register("multiclass")(object)
    with pytest.raises(UserError, match="^--head: unknown head 'multiclas' \\(did you mean 'multiclass'\\?\\); "
                                        "valid: multiclass$"):
        heads.get("multiclas", "--head")
    resize = lazy("cxr_tf.io.imaging", "RESIZE_MODES")
    assert resize.names() == imaging.RESIZE_MODES.names()
    with pytest.raises(UserError, match="^unknown resize mode 'crap' \\(did you mean 'crop'\\?\\)"):
        resize.check("crap")


def test_a_set_cannot_list_a_name_twice():
    with pytest.raises(ValueError, match="twice"):
        Choices("encoding", ("png", "png"))


def test_a_config_field_takes_the_set_itself_not_a_retyped_list():
    from cxr_tf import config

    with pytest.raises(TypeError, match="Registry, Choices or lazy"):
        config.option("png", "encoding", choices=["png", "jpeg"])


def _fit_errors(argv, capsys) -> tuple[int, str, str]:
    code = cli.run(fit.main, argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("given", ["flag", "recipe", "set"])
@pytest.mark.parametrize("key, value, line", [
    # A Choices (an enum of names) defined beside the label states.
    ("uncertainty", "onez", "--uncertainty: unknown uncertainty policy 'onez' (did you mean 'ones'?); "
                            "valid: ones, zeros, ignore, multiclass"),
    # A registry of things built by name.
    ("strategy", "mirorred", "--strategy: unknown strategy 'mirorred' (did you mean 'mirrored'?); "
                             "valid: auto, mirrored, multiworker, one_device"),
])
def test_a_misspelt_choice_is_one_did_you_mean_line_and_exit_2(tmp_path, capsys, given, key, value, line):
    if given == "flag":
        argv = ["--records", "r", f"--{key}", value]
    elif given == "recipe":
        (tmp_path / "r.toml").write_text(f'records = "r"\n{key} = "{value}"\n')
        argv = ["--recipe", str(tmp_path / "r.toml")]
    else:
        argv = ["--records", "r", "--set", f"{key}={value}"]
    code, out, err = _fit_errors(argv, capsys)
    assert (code, out, err) == (2, "", f"error: {FIT}: {line}\n")


def test_a_misspelt_recipe_key_is_one_did_you_mean_line(tmp_path, capsys):
    (tmp_path / "r.toml").write_text('records = "r"\nuncertainity = "ones"\n')
    code, _, err = _fit_errors(["--recipe", str(tmp_path / "r.toml")], capsys)
    assert code == 2 and err.startswith(f"error: {FIT}: unknown key 'uncertainity' (did you mean 'uncertainty'?)")
    assert len(err.splitlines()) == 1


def test_help_shows_each_flags_choices_from_their_definition(capsys):
    with pytest.raises(SystemExit):
        fit.main(["--help"])
    shown = capsys.readouterr().out
    from cxr_tf.training.optimizers import OPTIMIZERS

    for flag, choices in [("--uncertainty", labels.UNCERTAINTY_POLICIES), ("--blank", labels.BLANK_POLICIES),
                          ("--strategy", STRATEGIES), ("--optimizer", OPTIMIZERS)]:
        assert f"  {flag} {{{','.join(choices.names())}}}\n" in shown
    assert "  --model MODEL " in shown  # a field naming a kind points to --list-models instead
    with pytest.raises(SystemExit):
        build_records.main(["--help"])
    shown = capsys.readouterr().out
    for flag, choices in [("--resize", imaging.RESIZE_MODES), ("--encoding", imaging.ENCODINGS)]:
        assert f"  {flag} {{{','.join(choices.names())}}}\n" in shown


# The argparse side: only the python -m cxr_tf.VERB modules may import it.
CLI_SIDE = ("cxr_tf.cli", "cxr_tf.cli_options")
VERB_MODULES = {"cxr_tf.__main__", "cxr_tf.build_records", "cxr_tf.demo", "cxr_tf.evaluate", "cxr_tf.explain",
                "cxr_tf.export", "cxr_tf.fit", "cxr_tf.lr_find", "cxr_tf.manifest", "cxr_tf.predict",
                "cxr_tf.report", "cxr_tf.study", "cxr_tf.synth", *CLI_SIDE}


@pytest.mark.slow
def test_no_library_module_imports_the_argparse_side():
    script = f"""
import importlib, pkgutil, sys
import cxr_tf
names = sorted(m.name for m in pkgutil.walk_packages(cxr_tf.__path__, "cxr_tf."))
for name in names:
    if name in {sorted(VERB_MODULES)!r}:
        continue
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name.startswith("cxr_tf"):
            raise
        continue  # an optional dependency (apache_beam, tensorflow_datasets) this machine lacks
    pulled = [m for m in {CLI_SIDE!r} if m in sys.modules]
    if pulled:
        sys.exit(f"{{name}} imports {{pulled}}")
print(len(names))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 50  # the walk saw the whole package


def test_config_dataclasses_name_tensorflow_bound_sets_without_importing_tensorflow():
    script = ("import sys\n"
              "from cxr_tf.training.fit_config import FitConfig\n"
              "from cxr_tf.build_records import BuildConfig\n"
              "from cxr_tf import cli_options\n"
              "cli_options.parser_for(FitConfig, 'fit', '', recipes=True)\n"
              "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == 0
