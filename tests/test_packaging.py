"""What users install: the wheel carries the whole package, the dataset catalog and the recipes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cxr_tf import resources

REPO = Path(__file__).resolve().parents[1]
# What a build reads; copied so that the build's own build/ and *.egg-info never land in the checkout.
BUILD_INPUTS = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "cxr_tf", resources.CATALOG, resources.RECIPES)


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    """The file names inside a wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    for name in BUILD_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / "src" / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (root / "src").mkdir(exist_ok=True)
            shutil.copy(source, root / "src" / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(root / "dist"), str(root / "src")], check=True, capture_output=True)
    (wheel,) = (root / "dist").glob("cxr_tf-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@pytest.mark.parametrize("folder", [resources.CATALOG, resources.RECIPES])
def test_every_file_of_the_catalog_and_the_recipes_is_in_the_wheel(wheel_names, folder):
    expected = {f"cxr_tf/{p.relative_to(REPO).as_posix()}" for p in files_under(REPO / folder)}
    assert expected and expected <= wheel_names


def test_every_module_of_the_package_is_in_the_wheel(wheel_names):
    expected = {p.relative_to(REPO).as_posix() for p in files_under(REPO / "cxr_tf") if p.suffix == ".py"}
    assert expected <= wheel_names


def test_shipped_folders_are_read_as_package_resources():
    assert "nih.toml" in {item.name for item in resources.folder(resources.CATALOG).iterdir()}
    assert "s5_kermany2_resnet50" in resources.recipe_names()
    assert resources.recipe("demo_phantoms").read_text().startswith("# Demo")
