"""The Python API: ``cxr_tf.load(RUN_OR_EXPORT).predict(images)`` -> a DataFrame.

The same code as ``python -m cxr_tf.predict`` (``cxr_tf.serving.predict``): the same decoding, resizing
and thresholds, so the API, the command and an exported SavedModel give the same numbers.

Examples:
    >>> model = cxr_tf.load("runs/demo/run")                     # doctest: +SKIP
    >>> model.predict(["a.png", "scans/"])                       # doctest: +SKIP
    >>> model.predict([np.zeros((512, 512), np.uint16)])         # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from cxr_tf.serving.predict import Model


class Predictor:
    """A trained model ready to apply (made by ``cxr_tf.load``).

    Attributes:
        classes: output classes, in column order.
        thresholds: class -> operating threshold on the probability (a label is ``p >= threshold``).
        metadata: everything the export records (head, image_size, channels, resize...), as its JSON
            object (``cxr_tf.models.metadata.ModelMetadata.to_dict``).
    """

    def __init__(self, model: Model) -> None:
        self._model = model

    @property
    def classes(self) -> list[str]:
        return list(self._model.metadata.classes)

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self._model.metadata.thresholds)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._model.metadata.to_dict()

    def predict(self, images: str | Path | np.ndarray | Sequence[str | Path | np.ndarray],
                batch_size: int = 32) -> pd.DataFrame:
        """Probabilities and thresholded labels, one row per image.

        Args:
            images: one or a list of: an image file (PNG, JPEG, DICOM), a directory (searched
                recursively), a CSV with a ``path`` column, or a decoded image array (uint8/uint16/float
                ``[H, W]`` gray or ``[H, W, 3|4]`` BGR(A), any size, as ``cv2.imread`` gives).
            batch_size: images per model call.

        Returns:
            DataFrame with columns ``path`` (the file, or ``array N`` for the N-th array),
            ``prob_<class>`` (float in [0, 1]), ``pred_<class>`` (0/1) per class, and ``error``
            (why an image could not be used, else empty; its probabilities and labels are then NaN).

        Raises:
            UserError: a path that does not exist, or a CSV without a ``path`` column.
        """
        import pandas as pd

        from cxr_tf.evaluation import columns
        from cxr_tf.serving import predict

        single = isinstance(images, (str, Path, np.ndarray))
        items = []
        for index, image in enumerate([images] if single else list(images)):
            if isinstance(image, np.ndarray):
                items.append(predict.Item(f"array {index}", None, pixels=image))
            else:
                items += predict.collect([image])
        results = predict.predict(self._model, items, batch_size)
        table = pd.DataFrame(predict.rows(results, self.classes), columns=predict.columns(self.classes))
        dtypes = {columns.probability(name): "float64" for name in self.classes}
        dtypes |= {columns.predicted(name): "Int8" for name in self.classes}  # <NA> for images that failed
        return table.astype({**dtypes, "error": "string"})

    def __repr__(self) -> str:
        return f"Predictor({str(self._model.source)!r}, classes={self.classes})"


def load(model: str | Path) -> Predictor:
    """Open a run directory, an exported ``.keras`` model (or its directory) or an exported SavedModel.

    Raises:
        UserError: ``model`` is none of these.
    """
    from cxr_tf.serving import predict

    return Predictor(predict.load_model(model))
