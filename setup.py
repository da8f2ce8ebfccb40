"""Packaging entry point; the project's metadata and dependencies live in setup.cfg.

The dataset catalog (``data_manifests/``) and the recipes (``pipelines/``) stay top-level folders of
the repository, as the design card has them; here they are mapped into the package as
``cxr_tf.data_manifests`` and ``cxr_tf.pipelines`` (with every file in them), so a wheel or
``pip install .`` carries them and ``cxr_tf.resources`` reads them wherever the package is installed.
setup.cfg cannot express this: ``packages = find:`` only finds folders under the package itself.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
SHIPPED = ("data_manifests", "pipelines")
# One package per folder (sub-folders included, e.g. data_manifests/samples), named cxr_tf.<folder>.
DATA_DIRS = {
    "cxr_tf." + ".".join(sub.relative_to(HERE).parts): sub.relative_to(HERE).as_posix()
    for top in SHIPPED
    for sub in [HERE / top, *sorted(p for p in (HERE / top).rglob("*") if p.is_dir() and p.name != "__pycache__")]
}

setup(
    packages=find_packages(include=["cxr_tf", "cxr_tf.*"]) + list(DATA_DIRS),
    package_dir=DATA_DIRS,
    package_data={name: ["*"] for name in DATA_DIRS},
)
