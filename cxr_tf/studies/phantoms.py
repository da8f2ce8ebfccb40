"""``--phantoms``: a study's data drawn as phantoms in its source's layout, then built into records.

The two steps are the commands a user would type (``synth``, then ``build_records`` with the adapter of
the study's source and its split), so the CLI can print and run them. Both resume: an existing
``records/dataset.json`` means the data are complete and neither step runs again.
"""

from __future__ import annotations

from pathlib import Path

from cxr_tf.records import info
from cxr_tf.studies.grids import Study

PHANTOMS_DIR = "phantoms"


def records_dir(out: Path) -> Path:
    """Where ``--phantoms`` puts a study's records under its ``--out``."""
    return out / PHANTOMS_DIR / "records"


def ready(out: Path) -> bool:
    """Whether the phantom records of ``out`` were completely built (build_records writes dataset.json last)."""
    return (records_dir(out) / info.FILENAME).exists()


def commands(study: Study, out: Path, *, n: int | None = None, size: int | None = None,
             seed: int = 0) -> list[tuple[str, list[str]]]:
    """The ``(module, argv)`` of ``python -m cxr_tf.synth`` and ``python -m cxr_tf.build_records`` that
    draw ``study``'s phantoms (``n`` images of ``size`` px, default the study's) and build its records."""
    spec = study.phantoms
    images = out / PHANTOMS_DIR / "images"
    size = size or spec.size
    synth = ["--out", str(images), "--style", spec.style, "--n", str(n or spec.n), "--size", str(size),
             "--seed", str(seed), *spec.synth]
    build = [arg.format(d=images) for arg in spec.build]
    build += ["--image-size", str(size), "--seed", str(seed), "--out", str(records_dir(out))]
    return [("synth", synth), ("build_records", build)]
