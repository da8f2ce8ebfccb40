"""Write a whole phantom data set: images in parallel, then the label files of its style."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cxr_tf import reporting
from cxr_tf.errors import UserError
from cxr_tf.io import atomic, claims
from cxr_tf.io.workers import WorkerPool
from cxr_tf.phantoms.findings import FINDINGS, Box
from cxr_tf.phantoms.generate import DEFAULT_PREVALENCE, ImageSpec, render_image
from cxr_tf.phantoms.writers import STYLES, LabelOptions, write_png

_log = reporting.logger("phantoms")


CONFIG_FILE = "synth.toml"


def _finding(name: str, flag: str) -> str:
    try:
        FINDINGS.get(name)
    except UserError as err:
        raise UserError(f"{flag}: {err}") from None
    return name


def resolve_prevalence(findings: Sequence[str], items: Sequence[str], single_label: bool) -> dict[str, float]:
    """Finding -> per-image probability, from ``--findings`` names and ``--prevalence NAME=P`` items.

    A finding without an item gets ``DEFAULT_PREVALENCE``; an item's finding is drawn even if not
    in ``findings``. Single-label (class folder) sets default to balanced classes, ``Normal``
    included, and their shares may not sum above 1.

    Raises:
        UserError: unknown finding, malformed item, probability outside [0, 1], shares over 1.
    """
    given: dict[str, float] = {}
    for item in items:
        name, _, raw = item.partition("=")
        try:
            value = float(raw)
        except ValueError:
            raise UserError(f"--prevalence {item!r}: expected NAME=P with P a number, e.g. Effusion=0.2") from None
        if not 0.0 <= value <= 1.0:
            raise UserError(f"--prevalence {item!r}: P must be between 0 and 1")
        given[_finding(name, "--prevalence")] = value
    names = [_finding(n, "--findings") for n in findings]
    names += [n for n in given if n not in names]
    if single_label and not given:
        return {n: 1.0 / (len(names) + 1) for n in names}
    chances = {n: given.get(n, DEFAULT_PREVALENCE[n]) for n in names}
    if single_label and sum(chances.values()) > 1.0 + 1e-9:
        raise UserError(f"--prevalence: class shares sum to {sum(chances.values()):.2f}; at most 1 "
                        "(Normal takes the rest)")
    return chances


def claim(out: Path, run: dict[str, Any], text: str, ignore: Sequence[str] = ()) -> None:
    """Make ``out`` this run's and save its resolved config ``text`` there first.

    ``out`` must be new, empty, or hold the same run (keys in ``ignore`` aside; ``io.claims.claim``): a
    killed run is re-run in place and rewrites its complete files identically; two data sets never mix.
    """
    owner = claims.Owner(command="synth", config_file=CONFIG_FILE, ignore=frozenset(ignore))
    if claims.claim(str(out), run, owner):
        atomic.remove_partials(out)  # left by the killed run
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(text)


@dataclass(frozen=True)
class _Job:
    spec: ImageSpec
    path: Path
    size: int
    difficulty: float
    seed: int


def _draw(job: _Job) -> tuple[int, dict[str, list[Box]]]:
    """Draw and write one image; returns its index and boxes (runs in a worker process)."""
    phantom = render_image(job.spec, job.size, job.difficulty, job.seed)
    write_png(job.path, phantom.image)
    return job.spec.index, phantom.boxes


def write_dataset(out: Path, specs: list[ImageSpec], style: str, size: int, difficulty: float, seed: int,
                  workers: int, labels: LabelOptions) -> list[Path]:
    """Draw every spec into ``out`` in the layout of ``style`` and write its label files.

    Images are independent of ``workers`` (each has its own generator) and label files are
    written in spec order once all images exist, so the output is byte-identical across runs.

    Args:
        out: output directory (created).
        specs: the images, from ``generate.plan``.
        style: a ``writers.STYLES`` name.
        size: image side, pixels.
        difficulty: in [0, 1], see ``findings.Strength``.
        seed: the data set's seed.
        workers: drawing processes; 1 draws in this process.
        labels: options of the label writer.

    Returns:
        The label files written.
    """
    layout = STYLES.get(style)
    jobs = [_Job(spec, out / layout.path(spec), size, difficulty, seed) for spec in specs]
    boxes: dict[int, dict[str, list[Box]]] = {}
    bar = dict(total=len(jobs), desc="phantoms", unit="img")
    with WorkerPool(workers, preload=__name__) as pool:
        chunk = max(1, min(32, len(jobs) // (4 * workers)))
        boxes.update(reporting.progress(pool.map(_draw, jobs, chunksize=chunk), **bar))
    written = layout.write_labels(out, specs, boxes, labels)
    _log.debug("wrote %d images and %d label files to %s", len(jobs), len(written), out)
    return written
