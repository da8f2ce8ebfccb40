"""Per-class column names of the prediction tables, one scheme for every command: the kind, then the class.

* ``prob_<class>``: the class's probability in [0, 1]: evaluate's ``predictions.csv``, predict's CSV and
  the Python API's DataFrame (``cxr_tf.load(...).predict``).
* ``label_<class>``: the reference label (1/0, empty where the label policy masks it) in ``predictions.csv``.
* ``pred_<class>``: the model's decision (1/0: probability >= the class's threshold) in predict's CSV and
  the API's DataFrame.

Writers and readers (report, compare, subgroups, the studies' tables) name columns through these functions.
"""

from __future__ import annotations

PROBABILITY_PREFIX = "prob_"
LABEL_PREFIX = "label_"
PREDICTED_PREFIX = "pred_"


def probability(class_name: str) -> str:
    """``"Edema"`` -> ``"prob_Edema"``."""
    return PROBABILITY_PREFIX + class_name


def label(class_name: str) -> str:
    """``"Edema"`` -> ``"label_Edema"``."""
    return LABEL_PREFIX + class_name


def predicted(class_name: str) -> str:
    """``"Edema"`` -> ``"pred_Edema"``."""
    return PREDICTED_PREFIX + class_name
