"""A finished ``python -m cxr_tf.fit`` run directory, as evaluate, explain, export and predict read it.

A run holds ``config.toml`` (the resolved ``FitConfig``), ``dataset.json`` (the records' description),
``best.keras`` (the model: the stored gray image 0-255 in, logits out) and, once ``evaluate`` has run on the validation
split, ``thresholds.json`` (one operating threshold per class, chosen on validation data)::

    {"method": "youden", "split": "val", "thresholds": {"Cardiomegaly": 0.41, ...}}

and, after ``evaluate --calibrate``, ``calibration.json`` (``cxr_tf.evaluation.calibration.fit``'s
parameters, fitted on the validation split; the thresholds are then on calibrated probabilities).

A finished run also holds ``summary.json`` (``RunSummary``, written last by fit). ``Run.model_metadata``
describes the model for predict and export (``cxr_tf.models.metadata.ModelMetadata``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxr_tf import config as config_lib
from cxr_tf.errors import UserError
from cxr_tf.records.info import FILENAME as RECORDS_INFO_FILE, RecordsInfo
from cxr_tf.training.fit_config import FitConfig

if TYPE_CHECKING:
    from cxr_tf.models.heads import Head
    from cxr_tf.models.metadata import ModelMetadata

MODEL_FILE = "best.keras"
THRESHOLDS_FILE = "thresholds.json"
CALIBRATION_FILE = "calibration.json"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class RunSummary:
    """A run's ``summary.json``: written last by fit, so a run with one is finished.

    Attributes:
        run: the run directory, as fit was given it.
        monitor: the ``history.csv`` column that chose ``best.keras`` (``val_mean_auc`` | ``val_accuracy``).
        best: its best value, None when no epoch had a finite one.
        params: phase (``train``, or ``phase1`` and ``phase2`` of two-phase training) ->
            ``{"total": int, "trainable": int}`` parameter counts.
        epochs: epochs of every phase together.
        finished_earlier: not in the file: True when fit found the run finished and trained nothing.
    """

    run: str
    monitor: str
    best: float | None
    params: dict[str, dict[str, int]]
    epochs: int
    finished_earlier: bool = False

    @property
    def parameters(self) -> int:
        """The model's parameter count (its first phase's total; freezing changes only the trainable ones)."""
        return self.params[next(iter(self.params))]["total"]

    def to_text(self) -> str:
        """``summary.json``'s text: the JSON indented by 2 (keys run, monitor, best, params, epochs)."""
        return json.dumps({"run": self.run, "monitor": self.monitor, "best": self.best, "params": self.params,
                           "epochs": self.epochs}, indent=2)

    @classmethod
    def load(cls, path: str | Path) -> RunSummary:
        """Read a ``summary.json``."""
        values = json.loads(Path(path).read_text())
        return cls(values["run"], values["monitor"], values["best"], values["params"], values["epochs"])


@dataclass(frozen=True)
class Run:
    """What a run learnt and how: its config, its records' description and its task."""

    path: Path
    config: FitConfig
    info: RecordsInfo  # the run's copy of its records' dataset.json
    classes: list[str]
    head: Head  # what the model's logits mean (cxr_tf.models.heads)
    monitor: str  # the history.csv column that chose best.keras: val_mean_auc | val_accuracy

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def input_spec(self) -> Any:
        """The model's input (``cxr_tf.pipeline.model_input.InputSpec``): its side, the records' side and
        resize mode, its channels."""
        from cxr_tf.pipeline.model_input import InputSpec

        return InputSpec(int(self.config.image_size), self.info.image_size, self.info.resize,
                         self.config.input_channels)

    def load_model(self) -> Any:
        """The best model (``keras.Model``; input float32 [B, S, S, 1] gray 0-255, output logits)."""
        import cxr_tf.models  # noqa: F401  (registers the input layers for deserialisation)

        return load_keras(self.model_file, "--run")

    def summary(self) -> RunSummary | None:
        """The run's ``summary.json``, or None while it is not finished."""
        path = self.path / SUMMARY_FILE
        return RunSummary.load(path) if path.exists() else None

    def model_metadata(self) -> ModelMetadata:
        """What predict and export need besides the weights: the classes, head, input spec, the
        thresholds (``thresholds.json`` when evaluate wrote one, else ``DEFAULT_THRESHOLD`` each;
        ``thresholds_from`` says which) and the calibration."""
        import cxr_tf
        from cxr_tf.models.metadata import DEFAULT_THRESHOLD, ModelMetadata

        chosen = self.thresholds() or {}
        return ModelMetadata(
            classes=list(self.classes), head=self.head,
            thresholds={name: float(chosen.get(name, DEFAULT_THRESHOLD)) for name in self.classes},
            thresholds_from="run" if chosen else f"default {DEFAULT_THRESHOLD}", input_spec=self.input_spec,
            model=self.config.model, source_run=str(self.path.resolve()), cxr_tf_version=cxr_tf.__version__,
            calibration=self.calibration())

    def thresholds(self) -> dict[str, float] | None:
        """Operating thresholds per class written by ``evaluate``, or None before it ran."""
        path = self.path / THRESHOLDS_FILE
        return json.loads(path.read_text())["thresholds"] if path.exists() else None

    def save_thresholds(self, thresholds: dict[str, float], method: str | float, split: str) -> None:
        (self.path / THRESHOLDS_FILE).write_text(
            json.dumps({"method": method, "split": split, "thresholds": thresholds}, indent=2))

    def calibration(self) -> dict[str, Any] | None:
        """The probability calibration ``evaluate --calibrate`` fitted, or None."""
        path = self.path / CALIBRATION_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def save_calibration(self, calibration: dict[str, Any] | None) -> None:
        """Store ``calibration`` (``calibration.fit``'s JSON); None removes an earlier one."""
        path = self.path / CALIBRATION_FILE
        if calibration is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(json.dumps(calibration, indent=2))


def load(path: str | Path) -> Run:
    """Open the run directory ``path``; a directory without a finished run is a ``UserError``."""
    from cxr_tf.training.fit import resolve_task

    path = Path(path)
    for name in ("config.toml", RECORDS_INFO_FILE, MODEL_FILE):
        if not (path / name).exists():
            raise UserError(f"--run {path}: no {name}; give the directory of a run of python -m cxr_tf.fit "
                            "that finished at least one epoch")
    cfg = config_lib.build(FitConfig, config_lib.load_toml(path / "config.toml"), str(path / "config.toml"))
    info = RecordsInfo.load(str(path))
    task = resolve_task(info, cfg)
    return Run(path, cfg, info, task.classes, task.head, task.monitor)


def load_keras(path: Path, flag: str) -> Any:
    """``keras.saving.load_model(path, compile=False)`` in Keras' safe mode, failing in one line.

    Safe mode refuses to deserialise Python code (a ``Lambda`` layer's function), which would run on
    loading; such a file is refused rather than loaded unsafely.

    Raises:
        UserError: not a ``.keras`` file (not a zip archive, or not a model inside), or refused by safe mode.
    """
    import zipfile

    import keras

    if not zipfile.is_zipfile(path):
        raise UserError(f"{flag} {path}: not a Keras model file (a .keras file is a zip archive)")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as err:
        if "safe_mode" in str(err):
            raise UserError(f"{flag} {path}: refused: this file contains arbitrary code (Lambda); only load "
                            "models you trust") from None
        raise UserError(f"{flag} {path}: not a Keras model file ({str(err).splitlines()[0]})") from None
    except (KeyError, OSError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise UserError(f"{flag} {path}: not a Keras model file ({err})") from None
    except TypeError as err:  # a layer class this cxr_tf does not define (written by another version?)
        raise UserError(f"{flag} {path}: cannot rebuild this Keras model ({str(err).splitlines()[0][:200]})") from None
