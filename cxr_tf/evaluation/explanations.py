"""Explain a run: the library behind ``python -m cxr_tf.explain``.

* Image files (``explain_images``): ``<image stem>_<class>.png`` per image, the Grad-CAM overlay of each
  class whose probability reaches its threshold (the run's ``thresholds.json``) or, without thresholds or
  when none does, of the top-scoring class; or of the classes asked for. Files that cannot be read are
  skipped and listed.
* Records with boxes (``explain_records``): the pointing game of ``explain.hit_rate`` as ``hit_rate.json``,
  and the first ``RECORD_OVERLAYS`` (image, class) overlays with their boxes drawn.

Both also put their overlays in the run's TensorBoard log (``tb/explain``). Grad-CAM itself, overlays and
the hit rate are ``explain.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from cxr_tf.errors import UserError
from cxr_tf.evaluation import explain

if TYPE_CHECKING:
    from cxr_tf.training.runs import Run

# Overlays written in --records mode: enough to eyeball, few enough for NIH's 880 boxed images.
RECORD_OVERLAYS = 8
HIT_RATE_FILE = "hit_rate.json"


@dataclass(frozen=True)
class Overlay:
    """One written overlay: its file, the class it explains, and the class's probability (image files) or
    whether the heatmap's peak fell inside a box (records)."""

    file: Path
    class_name: str
    probability: float | None = None
    hit: bool | None = None


@dataclass(frozen=True)
class ImageExplanations:
    """What ``explain_images`` wrote: its ``overlays`` in order, and the files ``skipped`` (path, reason)."""

    overlays: list[Overlay] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RecordExplanations:
    """What ``explain_records`` wrote: ``hit_rate`` (``HitRate.to_json``, the content of ``hit_rate.json``),
    ``file`` (that file) and the ``overlays`` with boxes."""

    hit_rate: dict[str, dict[str, Any]]
    file: Path
    overlays: list[Overlay]


def check_request(run: Run, model: Any, classes: Sequence[str] | None, layer: str | None) -> None:
    """Raise ``UserError`` for a class that is not the run's (``--class``) or a ``--layer`` that is not a
    feature map of its model."""
    unknown = [name for name in classes or [] if name not in run.classes]
    if unknown:
        raise UserError(f"--class {', '.join(unknown)}: not a class of {run.path}; "
                        f"its classes: {', '.join(run.classes)}")
    try:
        explain.feature_layer(model, layer)
    except ValueError as err:
        raise UserError(f"--layer: {err}") from None


def default_classes(classes: list[str], probs: Any, thresholds: dict[str, float] | None) -> list[str]:
    """Classes at or above their threshold; without thresholds, or when none is, the top-scoring one."""
    above = [c for c, p in zip(classes, probs) if thresholds is not None and p >= thresholds[c]]
    return above or [classes[int(probs.argmax())]]


def unused(target: Path, written: set[Path]) -> Path:
    """``target``, or ``<stem>_2.png``... when an earlier input of the same stem (a.png, a.jpg) took it."""
    candidate, n = target, 1
    while candidate in written:
        n += 1
        candidate = target.with_name(f"{target.stem}_{n}{target.suffix}")
    return candidate


def explain_images(run: Run, model: Any, images: Sequence[str | Path], out: Path,
                   classes: Sequence[str] | None = None, layer: str | None = None) -> ImageExplanations:
    """Grad-CAM overlays of image files into ``out`` (module docstring).

    Args:
        run: the run (its classes, head, input spec, thresholds). model: its ``keras.Model``.
        images: image files (PNG, JPEG, DICOM...). out: the overlays' directory (existing).
        classes: the classes to explain (default: above threshold, or the top one).
        layer: the feature map Grad-CAM weighs (default: the backbone's last one).
    """
    from cxr_tf.io import imaging

    thresholds = run.thresholds()
    result = ImageExplanations()
    written: set[Path] = set()
    panels: dict[str, np.ndarray] = {}
    for path in map(Path, images):
        gray, reason = imaging.load_gray8_or_reason(path)
        if reason is not None:
            result.skipped.append((str(path), reason))
            continue
        image = run.input_spec.from_gray(gray)[np.newaxis]
        probs = np.asarray(run.head.probabilities(model(image, training=False)))[0]
        transform = imaging.resize(gray, run.config.image_size, run.info.resize)[1]
        names = list(classes or default_classes(run.classes, probs, thresholds))
        # The image once per class, in one Grad-CAM pass.
        heatmaps = explain.grad_cam(model, np.repeat(image, len(names), axis=0),
                                    [run.classes.index(name) for name in names], run.head, layer)
        for name, heatmap in zip(names, heatmaps):
            target = unused(out / f"{explain.file_stem(path.stem)}_{explain.file_stem(name)}.png", written)
            panel = explain.overlay(gray, heatmap, transform)
            explain.save_png(target, panel)
            panels[target.stem] = panel
            written.add(target)
            result.overlays.append(Overlay(target, name, probability=float(probs[run.classes.index(name)])))
    explain.write_tensorboard(run.path, panels)
    return result


def explain_records(run: Run, model: Any, records: str, split: str, out: Path, *, limit: int | None = None,
                    layer: str | None = None) -> RecordExplanations:
    """The Grad-CAM hit rate on the boxed records of ``split`` as ``out/hit_rate.json``, and the first
    ``RECORD_OVERLAYS`` overlays with their boxes (``explain.hit_rate``; ``limit``: first N boxed records)."""
    import json

    counts, kept = explain.hit_rate(model, run, records, split, limit=limit, keep=RECORD_OVERLAYS, layer=layer)
    table = counts.to_json()
    (out / HIT_RATE_FILE).write_text(json.dumps(table, indent=2))
    panels, overlays = {}, []
    for pair in kept:
        target = out / f"{explain.file_stem(Path(pair.path).stem)}_{explain.file_stem(pair.class_name)}.png"
        panels[target.stem] = pair.render()
        explain.save_png(target, panels[target.stem])
        overlays.append(Overlay(target, pair.class_name, hit=pair.hit))
    explain.write_tensorboard(run.path, panels)
    return RecordExplanations(table, out / HIT_RATE_FILE, overlays)
