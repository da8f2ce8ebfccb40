"""Where a model fails: its most confident false positives and false negatives per class, with Grad-CAM.

An AUC says how often a model ranks wrongly, not what it gets wrong. The gallery shows, per class, the
``per_class`` negatives with the highest probability above the operating threshold (false positives)
and the positives with the lowest probability below it (false negatives), each overlaid with the
Grad-CAM heatmap of that class (``explain.grad_cam``), so a reviewer sees whether the model looked at
the finding, at a label, a tube or at nothing. Written by evaluate as ``errors/*.png`` and ``errors.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from cxr_tf.io.imaging import Transform

if TYPE_CHECKING:
    from cxr_tf.evaluation.evaluate import Predictions
    from cxr_tf.models.heads import Head
    from cxr_tf.training.runs import Run

PER_CLASS = 3
DIRECTORY = "errors"
INDEX_FILE = "errors.json"
KINDS = {"fp": "false positive", "fn": "false negative"}


def select(preds: Predictions, classes: Sequence[str], head: Head, thresholds: np.ndarray | None,
           per_class: int = PER_CLASS) -> list[dict[str, Any]]:
    """The most confident errors of every class, as ``errors.json`` entries without their file.

    A class is predicted as ``head.decisions`` says: when its probability reaches ``thresholds[k]``, or
    for a single-label (exclusive) head when it is the image's top class. Masked labels are never errors.

    Returns:
        Dicts ``{"class", "kind" ("fp" | "fn"), "rank" (1-based), "index" (row of predictions.csv),
        "path", "probability", "threshold" (None for multiclass)}``, per class false positives then
        false negatives.
    """
    out = []
    decisions = head.decisions(preds.probs, thresholds)
    for k, name in enumerate(classes):
        prob, predicted = preds.probs[:, k], decisions[:, k]
        truth = preds.labels[:, k] > 0.5
        for kind, wrong, order in (("fp", ~truth & predicted, -prob), ("fn", truth & ~predicted, prob)):
            rows = np.flatnonzero(wrong & preds.mask[:, k])
            for rank, index in enumerate(rows[np.argsort(order[rows], kind="stable")][:per_class], start=1):
                out.append({"class": name, "kind": kind, "rank": rank, "index": int(index),
                            "path": str(preds.paths[index]), "probability": float(prob[index]),
                            "threshold": None if head.exclusive else float(thresholds[k])})
    return out


def stored_examples(records: str, split: str, paths: set[str],
                    image_size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The records of ``split`` whose path is in ``paths``: path -> (stored gray image uint8 [H, W], model
    input float32 [image_size, image_size, 1] 0-255, resized as evaluate's input is)."""
    import tensorflow as tf

    from cxr_tf.pipeline import parse
    from cxr_tf.pipeline.dataset import serialized_records
    from cxr_tf.pipeline.model_input import to_model_side
    from cxr_tf.records import features, info as records_info

    info = records_info.RecordsInfo.load(records)
    spec = features.feature_spec(len(info.classes))
    wanted = tf.constant(sorted(paths) or [""])
    keys = {k: spec[k] for k in (features.PATH_KEY, features.IMAGE_KEY)}

    def decode(example: dict[str, tf.Tensor]) -> tuple[tf.Tensor, ...]:
        gray = parse.decode_image(example[features.IMAGE_KEY])
        return example[features.PATH_KEY], gray[..., 0], to_model_side(tf.cast(gray, tf.float32), image_size)

    ds = serialized_records(records_info.shard_paths(records, info, split)) \
        .map(lambda serialized: tf.io.parse_single_example(serialized, keys)) \
        .filter(lambda example: tf.reduce_any(tf.equal(example[features.PATH_KEY], wanted))) \
        .map(decode)
    return {path.decode(): (gray, image) for path, gray, image in ds.as_numpy_iterator()}


def gallery(model: Any, run: Run, records: str, split: str, preds: Predictions, thresholds: np.ndarray | None,
            out_dir: Path, per_class: int = PER_CLASS) -> list[dict[str, Any]]:
    """Write the error gallery: ``out_dir/errors/<class>_<fp|fn>_<rank>.png`` and ``out_dir/errors.json``.

    Each PNG is the stored image with the class's Grad-CAM heatmap (``explain.overlay``), as the model
    saw it (``stored_examples``: the stored image at the model's side, as evaluate's input).

    Returns:
        ``select``'s entries, each with ``file`` (relative to ``out_dir``).
    """
    from cxr_tf.evaluation import explain

    entries = select(preds, run.classes, run.head, thresholds, per_class)
    size = run.config.image_size
    examples = stored_examples(records, split, {e["path"] for e in entries}, size)
    folder = out_dir / DIRECTORY
    folder.mkdir(parents=True, exist_ok=True)
    # Each image's map of its own class, the whole gallery in as few passes as Grad-CAM allows rather
    # than a pass per class (a 470-layer network runs eagerly here).
    heatmaps = explain.grad_cam(model, np.stack([examples[e["path"]][1] for e in entries]),
                                [run.classes.index(e["class"]) for e in entries], run.head) if entries else []
    for entry, heatmap in zip(entries, heatmaps):
        gray = examples[entry["path"]][0]
        to_model = Transform(size / gray.shape[1], size / gray.shape[0], 0.0, 0.0)
        entry["file"] = f"{DIRECTORY}/{explain.file_stem(entry['class'])}_{entry['kind']}_{entry['rank']}.png"
        explain.save_png(out_dir / entry["file"], explain.overlay(gray, heatmap, to_model))
    (out_dir / INDEX_FILE).write_text(json.dumps(entries, indent=2))
    return entries
