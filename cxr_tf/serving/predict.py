"""Apply a trained model to image files: per-class probabilities and thresholded labels per image.

The model is a run directory, an exported ``.keras`` model (with its ``metadata.json``) or an exported
SavedModel (``cxr_tf.serving.export``); all three give the same numbers because every image goes
through the same code: ``cxr_tf.io.imaging.decode_gray8`` (PNG, JPEG, DICOM; 8/16-bit; gray/RGB/RGBA, as
build_records decodes) then ``cxr_tf.pipeline.model_input.InputSpec.from_gray`` (the records' resize, then
the pipeline's), and the model's gray input.
A file that cannot be used becomes a prediction with an ``error`` (the reason) instead of stopping
the others.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TextIO

import numpy as np

from cxr_tf import reporting
from cxr_tf.io import imaging, paths
from cxr_tf.datasets import manifest_io
from cxr_tf.errors import UserError
from cxr_tf.evaluation import columns as column_names
from cxr_tf.registry import Choices

if TYPE_CHECKING:
    from cxr_tf.models.metadata import ModelMetadata

OUTPUT_FORMATS = Choices("output format", ("json", "csv"))
PATH_COLUMN = "path"


@dataclass(frozen=True)
class Model:
    """A model ready to apply.

    Attributes:
        source: the ``--model`` path.
        metadata: ``cxr_tf.models.metadata.ModelMetadata``: classes, head, thresholds, the input spec...
        probabilities: float32 [B, S, S, 1] 0-255 model inputs -> float32 [B, K] probabilities in [0, 1].
    """

    source: Path
    metadata: ModelMetadata
    probabilities: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Item:
    """One image to predict: ``name`` as shown in the output, and its file (or its decoded ``pixels``,
    any array ``imaging.to_gray8`` takes), or why it is refused."""

    name: str
    file: Path | None
    error: str | None = None
    pixels: np.ndarray | None = None


@dataclass(frozen=True)
class Prediction:
    """One image's result: probabilities and 0/1 labels per class, or the ``error`` that stopped it."""

    path: str
    probabilities: dict[str, float] | None = None
    labels: dict[str, int] | None = None
    error: str | None = None


def load_model(path: str | Path) -> Model:
    """Open ``path``: a run directory, an exported ``.keras`` file or its directory, or a SavedModel directory."""
    from cxr_tf.serving import export

    path = Path(path)
    if (path / "config.toml").is_file():
        return _from_run(path)
    keras_file = path / export.KERAS_FILE if path.is_dir() else path
    if keras_file.suffix == ".keras" and keras_file.is_file():
        return _from_keras(path, keras_file, keras_file.parent / export.METADATA_FILE)
    if (path / "saved_model.pb").is_file():
        return _from_savedmodel(path)
    raise UserError(f"--model {path}: not a run directory, an exported .keras file (or its directory) or an "
                    "exported SavedModel directory (python -m cxr_tf.export)")


def _keras_probabilities(model: Any, metadata: ModelMetadata) -> Callable[[np.ndarray], np.ndarray]:
    """Probabilities of a Keras model, calibrated as ``metadata.calibration`` says (the SavedModel's
    signatures do the same inside the graph)."""
    from keras import ops

    from cxr_tf.evaluation import calibration

    def probabilities(pixels: np.ndarray) -> np.ndarray:
        raw = metadata.head.probabilities(model.predict_on_batch(pixels))
        return np.asarray(ops.convert_to_numpy(calibration.apply(raw, metadata.calibration, metadata.classes)))

    return probabilities


def _from_run(path: Path) -> Model:
    from cxr_tf.training import runs

    run = runs.load(path)
    metadata = run.model_metadata()
    return Model(path, metadata, _keras_probabilities(run.load_model(), metadata))


def _from_keras(path: Path, keras_file: Path, metadata_file: Path) -> Model:
    from cxr_tf.models.metadata import ModelMetadata
    from cxr_tf.training import runs

    import cxr_tf.models  # noqa: F401  (registers the input layers for deserialisation)

    if not metadata_file.is_file():
        raise UserError(f"--model {path}: no {metadata_file.name} next to {keras_file.name}; export the run with "
                        "python -m cxr_tf.export --format keras")
    metadata = ModelMetadata.load(metadata_file)
    model = runs.load_keras(keras_file, "--model")
    return Model(path, metadata, _keras_probabilities(model, metadata))


def _from_savedmodel(path: Path) -> Model:
    import tensorflow as tf

    from cxr_tf.models.metadata import ModelMetadata

    loaded = tf.saved_model.load(str(path))
    if "metadata" not in loaded.signatures or "pixels" not in loaded.signatures:
        raise UserError(f"--model {path}: a SavedModel without cxr_tf's metadata and pixels signatures; "
                        "export the run with python -m cxr_tf.export --format savedmodel")
    metadata = ModelMetadata.from_dict(json.loads(loaded.signatures["metadata"]()["json"].numpy()),
                                       f"{path} (metadata signature)")
    serve = loaded.signatures["pixels"]
    return Model(path, metadata, lambda pixels: serve(pixels=tf.constant(pixels, tf.float32))["probabilities"].numpy())


def collect(inputs: Sequence[str | Path]) -> list[Item]:
    """The images named by ``inputs``, in order.

    Each input is an image file (any name: a non-image becomes an error item), a directory (every
    ``imaging.IMAGE_SUFFIXES`` file below it, recursively, sorted by path, with the folders ``walk_images``
    would not enter as error items) or a ``.csv`` file with a ``path``
    column (paths relative to the CSV's directory; absolute or escaping paths become error items).

    Raises:
        UserError: an input that does not exist, or a CSV without a ``path`` column.
    """
    items: list[Item] = []
    for raw in inputs:
        source = Path(raw)
        if source.is_dir():
            walk = manifest_io.walk_images(source, imaging.IMAGE_SUFFIXES)
            listed = [Item(str(source / relative), source / relative) for relative in walk.paths]
            listed += [Item(str(source / relative), None, reason) for relative, reason in walk.skipped]
            items += sorted(listed, key=lambda item: item.name)
        elif source.suffix.lower() == ".csv" and source.is_file():
            items += _from_csv(source)
        elif source.exists() or source.is_symlink():  # not only regular files: _decode says why not
            items.append(Item(str(source), source))
        else:
            raise UserError(f"{source}: no such file or directory; give image files, directories of images or "
                            f"CSV files with a {PATH_COLUMN!r} column")
    return items


def _from_csv(table: Path) -> list[Item]:
    with open(table, newline="", encoding="utf-8-sig") as fh:  # -sig: Excel writes a byte-order mark
        reader = csv.DictReader(fh)
        try:
            if PATH_COLUMN not in (reader.fieldnames or []):
                raise UserError(f"{table}: no {PATH_COLUMN!r} column (columns: {', '.join(reader.fieldnames or [])}); "
                                "give one image path per row, relative to the CSV's directory")
            rows = [row[PATH_COLUMN] or "" for row in reader]
        except (csv.Error, UnicodeDecodeError) as err:  # e.g. a field over csv's 128 KB limit, binary data
            raise UserError(f"{table}: not a readable CSV (line {reader.line_num}: {err})") from None
    items = []
    for raw in rows:
        try:
            items.append(Item(raw, paths.resolve(table.parent, paths.relative_path(raw))))
        except paths.UnsafePath as err:
            items.append(Item(raw, None, f"refused: {err}"))
    return items


def predict(model: Model, items: Sequence[Item], batch_size: int = 32) -> list[Prediction]:
    """Predict every item, ``batch_size`` images per model call; unusable files become error predictions.

    Returns:
        One ``Prediction`` per item, in the items' order.
    """
    import tensorflow as tf

    prepare = tf.function(model.metadata.input_spec.from_gray,
                          input_signature=[tf.TensorSpec([None, None], tf.uint8)])  # one trace for every image size
    results: dict[int, Prediction] = {}
    batch: list[tuple[int, np.ndarray]] = []
    for index, item in enumerate(reporting.progress(items, total=len(items), desc="predict", unit="image")):
        gray, error = _decode(item)
        if error is not None:
            results[index] = Prediction(item.name, error=error)
            continue
        batch.append((index, prepare(gray).numpy()))
        if len(batch) == batch_size:
            results.update(_run_batch(model, items, batch))
            batch = []
    if batch:
        results.update(_run_batch(model, items, batch))
    return [results[index] for index in range(len(items))]


def _decode(item: Item) -> tuple[np.ndarray | None, str | None]:
    if item.error is not None:
        return None, item.error
    if item.pixels is not None:
        try:
            return imaging.to_gray8(np.asarray(item.pixels)), None
        except imaging.ImageError as err:
            return None, str(err)
    assert item.file is not None
    return imaging.load_gray8_or_reason(item.file)


def _run_batch(model: Model, items: Sequence[Item],
               batch: list[tuple[int, np.ndarray]]) -> Iterator[tuple[int, Prediction]]:
    classes = model.metadata.classes
    thresholds = np.array([model.metadata.thresholds[name] for name in classes], np.float32)
    probabilities = model.probabilities(np.stack([pixels for _, pixels in batch]))
    for (index, _), row in zip(batch, probabilities):
        yield index, Prediction(items[index].name,
                                probabilities={name: float(p) for name, p in zip(classes, row)},
                                labels={name: int(p >= t) for name, p, t in zip(classes, row, thresholds)})


def summary(predictions: Sequence[Prediction]) -> dict[str, int]:
    """``{"images": n, "predicted": n_ok, "failed": n_error}``."""
    failed = sum(p.error is not None for p in predictions)
    return {"images": len(predictions), "predicted": len(predictions) - failed, "failed": failed}


def write(predictions: Sequence[Prediction], model: Model, fmt: str, stream: TextIO) -> None:
    """Write ``predictions`` to ``stream`` as ``json`` or ``csv``.

    JSON: ``{"model", "classes", "thresholds", "summary", "predictions": [{"path", "probabilities":
    {class: p}, "labels": {class: 0|1}} or {"path", "error"}]}``. CSV: one row per image with columns
    ``path``, ``prob_<class>`` and ``pred_<class>`` per class (``cxr_tf.evaluation.columns``), and ``error``
    (empty when predicted).
    """
    OUTPUT_FORMATS.check(fmt, "--format")
    classes = model.metadata.classes
    if fmt == "json":
        json.dump({"model": str(model.source), "classes": classes, "thresholds": model.metadata.thresholds,
                   "summary": summary(predictions),
                   "predictions": [{k: v for k, v in vars(p).items() if v is not None} for p in predictions]},
                  stream, indent=2)
        stream.write("\n")
        return
    writer = csv.DictWriter(stream, columns(classes), lineterminator="\n")
    writer.writeheader()
    for row in rows(predictions, classes):
        writer.writerow({key: "" if value is None else repr(value) if isinstance(value, float) else value
                         for key, value in row.items()})


def columns(classes: Sequence[str]) -> list[str]:
    """The columns of the table form (CSV, ``cxr_tf.load(...).predict``): path, probabilities, labels, error."""
    return [PATH_COLUMN, *map(column_names.probability, classes), *map(column_names.predicted, classes), "error"]


def rows(predictions: Sequence[Prediction], classes: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per prediction, keyed by ``columns(classes)``; ``None`` where an image failed (or no error)."""
    out = []
    for p in predictions:
        row: dict[str, Any] = {PATH_COLUMN: p.path}
        for name in classes:
            row[column_names.probability(name)] = None if p.probabilities is None else p.probabilities[name]
        for name in classes:
            row[column_names.predicted(name)] = None if p.labels is None else p.labels[name]
        row["error"] = p.error
        out.append(row)
    return out
