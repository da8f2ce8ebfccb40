"""``ModelMetadata``: what a user of a trained model needs besides its weights.

``cxr_tf.serving.export`` writes it as ``metadata.json`` beside an exported model (and inside a SavedModel's
``metadata`` signature); ``cxr_tf.serving.predict`` reads it back, or makes it from a run directory
(``cxr_tf.training.runs.Run.model_metadata``). The JSON, one key per field in this order::

    {"format": 2, "classes": [...], "head": "multilabel", "thresholds": {"Cardiomegaly": 0.41, ...},
     "thresholds_from": "run", "image_size": 224, "stored_size": 256, "resize": "pad", "channels": "gray3",
     "model": "densenet121", "source_run": "/abs/runs/x", "cxr_tf_version": "0.1.0", "calibration": null,
     "exported_at": "2026-01-01T00:00:00+00:00"}

(``exported_at`` only in an export.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from cxr_tf.errors import UserError
from cxr_tf.models.heads import HEADS, Head

if TYPE_CHECKING:
    from cxr_tf.pipeline.model_input import InputSpec

# 2: models take the gray image [B, S, S, 1]; the input spec adds the records' side (stored_size).
METADATA_FORMAT = 2
# A class's threshold before evaluate chose one on validation data.
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class ModelMetadata:
    """A trained model's description.

    Attributes:
        classes: output order of the model's K classes.
        head: what the logits mean (``cxr_tf.models.heads``); stored as its name.
        thresholds: class -> operating threshold on the (calibrated) probability; a label is ``p >= t``.
        thresholds_from: ``run`` (the run's ``thresholds.json``, chosen by evaluate) or ``default 0.5``.
        input_spec: ``cxr_tf.pipeline.model_input.InputSpec``: model side, records' side (pixels),
            resize mode, input channels; stored as its four keys.
        model: zoo name (``--model``). source_run: absolute path of the run. cxr_tf_version: of the writer.
        calibration: ``cxr_tf.evaluation.calibration.fit``'s parameters from ``evaluate --calibrate``
            (applied to the probabilities before the thresholds), or None.
        format: ``METADATA_FORMAT`` of the writer.
        exported_at: ISO 8601 UTC time of the export, None for a run read directly.
    """

    classes: list[str]
    head: Head
    thresholds: dict[str, float]
    thresholds_from: str
    input_spec: InputSpec
    model: str
    source_run: str
    cxr_tf_version: str
    calibration: dict[str, Any] | None = None
    format: int = METADATA_FORMAT
    exported_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (module docstring), keys in the order the files hold them."""
        out = {"format": self.format, "classes": list(self.classes), "head": self.head.name,
               "thresholds": dict(self.thresholds), "thresholds_from": self.thresholds_from,
               **self.input_spec.to_dict(), "model": self.model, "source_run": self.source_run,
               "cxr_tf_version": self.cxr_tf_version, "calibration": self.calibration}
        if self.exported_at is not None:
            out["exported_at"] = self.exported_at
        return out

    def to_text(self) -> str:
        """``metadata.json``'s text: the JSON indented by 2, one trailing newline."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "metadata") -> ModelMetadata:
        """From the JSON object; a missing key is a ``UserError`` naming ``source`` (the file)."""
        from cxr_tf.pipeline.model_input import InputSpec

        try:
            return cls(list(values["classes"]), HEADS.get(values["head"]), dict(values["thresholds"]),
                       values["thresholds_from"], InputSpec.from_dict(values), values["model"],
                       values["source_run"], values["cxr_tf_version"], values["calibration"],
                       values["format"], values.get("exported_at"))
        except KeyError as err:
            raise UserError(f"{source}: no {err.args[0]!r} key; export the run again with python -m cxr_tf.export") \
                from None

    @classmethod
    def load(cls, path: str | Path) -> ModelMetadata:
        """Read a ``metadata.json``."""
        return cls.from_dict(json.loads(Path(path).read_text()), str(path))
