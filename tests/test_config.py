"""One config dataclass per command: flags and recipe keys map one to one, with a clear precedence."""

from __future__ import annotations

import dataclasses
import re

import pytest

from cxr_tf import cli_options, config
from cxr_tf.errors import UserError
from cxr_tf.registry import Choices


@dataclasses.dataclass(kw_only=True)
class Toy:
    records: str = config.required("records")
    image_size: int = config.option(224, "side")
    augment: bool = config.option(True, "augment")
    noise: list[str] = config.option([], "noise specs")
    mode: str = config.option("a", "mode", choices=Choices("mode", ("a", "b")))


def test_flags_are_the_field_names_with_dashes_and_lists_accumulate():
    cfg = cli_options.parse(Toy, ["--records", "r", "--image-size", "64", "--no-augment", "--noise", "gaussian:5",
                                  "--noise", "blur:1"])
    assert cfg == Toy(records="r", image_size=64, augment=False, noise=["gaussian:5", "blur:1"])


def test_flags_override_set_which_overrides_the_recipe(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('records = "from_recipe"\nimage_size = 96\nmode = "b"\n')
    cfg = cli_options.parse(Toy, ["--recipe", str(recipe), "--set", "image_size=128", "--set", "records=bare_word",
                                  "--image-size", "32"], recipes=True)
    assert (cfg.records, cfg.image_size, cfg.mode) == ("bare_word", 32, "b")


def test_a_saved_config_reads_back_as_a_recipe(tmp_path):
    cfg = Toy(records="r", noise=["poisson:0.5"], augment=False)
    (tmp_path / "config.toml").write_text(config.to_toml(cfg))
    assert cli_options.parse(Toy, ["--recipe", str(tmp_path / "config.toml")], recipes=True) == cfg


@pytest.mark.parametrize("argv, message", [
    (["--image-size", "1"], "--records is required"),
    (["--records", "r", "--mode", "c"], "^toy: --mode: unknown mode 'c'; valid: a, b$"),
    (["--records", "r", "--image-size", "big"], "invalid int value"),
])
def test_mistakes_are_user_errors(argv, message):
    with pytest.raises(UserError, match=message):
        cli_options.parse(Toy, argv, prog="toy")


def test_unknown_recipe_keys_are_named(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('records = "r"\nimage_sise = 96\n')
    with pytest.raises(UserError, match="unknown key.*image_sise"):
        cli_options.parse(Toy, ["--recipe", str(recipe)], prog="toy", recipes=True)


def test_bare_arguments_join_their_list_field_wherever_the_flags_are():
    cfg = cli_options.parse_with_positionals(Toy, ["x.png", "--records", "r", "y.png", "--noise", "z.png"], "toy", "",
                                             field="noise", metavar="IMAGE")
    assert cfg.noise == ["x.png", "y.png", "z.png"] and cfg.records == "r"


@dataclasses.dataclass(kw_only=True)
class Ranged:
    lr: float = config.option(1e-3, "rate", above=0)
    dropout: float = config.option(0.0, "dropout", at_least=0, below=1)
    size: int = config.option(64, "side", at_least=16, at_most=4096)
    weights: list[float] = config.option([1.0], "weights", at_least=0)
    steps: int | None = config.option(None, "steps", at_least=1)


@pytest.mark.parametrize("argv, message", [
    (["--lr", "nan"], "--lr nan: must be a finite number > 0"),
    (["--lr", "inf"], "--lr inf: must be a finite number > 0"),
    (["--lr", "0"], "--lr 0.0: must be > 0"),
    (["--dropout", "1"], "--dropout 1.0: must be in [0, 1)"),
    (["--size", "4097"], "--size 4097: must be between 16 and 4096"),
    (["--weights", "1", "-2"], "--weights -2.0: must be >= 0"),
    (["--steps", "-3"], "--steps -3: must be >= 1"),
])
def test_numbers_outside_their_range_or_not_finite_are_refused_naming_the_flag(argv, message):
    with pytest.raises(UserError, match=re.escape(message)):
        cli_options.parse(Ranged, argv)


def test_recipe_values_are_range_checked_like_flags_and_help_states_the_range(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text("lr = nan\n")
    with pytest.raises(UserError, match=re.escape("--lr nan: must be a finite number > 0")):
        cli_options.parse(Ranged, ["--recipe", str(recipe)], recipes=True)
    assert cli_options.parse(Ranged, ["--steps", "1", "--dropout", "0.5"]).steps == 1
    assert "side (between 16 and 4096)" in cli_options.parser_for(Ranged, "p", "").format_help()
