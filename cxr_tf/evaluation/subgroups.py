"""Metrics per subgroup: view (frontal/lateral), projection (AP/PA), sex and age band.

A model that holds on PA films of adults may fail on AP films (bedside, sicker patients) or on
children; reviewers (CLAIM item 36, TRIPOD-AI) ask for performance per such group. The attributes
come from the source (NIH and CheXpert record view, projection, sex and age) through the records into
``predictions.csv``; an attribute the source does not record (empty everywhere) is left out. Each
(subgroup, class) cell has its images, positives, AUC and patient-bootstrap CI; a cell with fewer than
``MIN_POSITIVES`` positives or negatives gets a note instead of an AUC, because its interval would span
most of [0.5, 1] and invite over-reading.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from cxr_tf.evaluation import bootstrap, columns

MIN_POSITIVES = 10
# Age bands of the NIH and CheXpert papers' demographic tables (paediatric, adult decades grouped, elderly).
AGE_BANDS = ((0, 18, "0-17"), (18, 40, "18-39"), (40, 60, "40-59"), (60, 80, "60-79"), (80, 200, "80+"))
# predictions.csv column -> name of the attribute in metrics.json and the report.
ATTRIBUTES = {"view": "view", "projection": "projection", "sex": "sex", "age": "age band"}
NOT_RECORDED = "not recorded"


def age_band(age: pd.Series) -> pd.Series:
    """Ages in years (NaN where unknown) -> band labels of ``AGE_BANDS`` (``NOT_RECORDED`` where unknown)."""
    years = pd.to_numeric(age, errors="coerce")
    out = pd.Series(NOT_RECORDED, index=age.index, dtype=object)
    for low, high, label in AGE_BANDS:
        out[(years >= low) & (years < high)] = label
    return out


def groups(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Attribute name -> the subgroup label of every row, for the attributes ``frame`` records."""
    out = {}
    for column, name in ATTRIBUTES.items():
        if column not in frame:
            continue
        values = age_band(frame[column]) if column == "age" else \
            frame[column].fillna("").astype(str).replace("", NOT_RECORDED)
        if (values != NOT_RECORDED).any():
            out[name] = values
    return out


def cell(y: np.ndarray, prob: np.ndarray, patients: np.ndarray, *, resamples: int, seed: int,
         level: float, min_positives: int = MIN_POSITIVES) -> dict[str, Any]:
    """``{"n", "positives", "auc", "auc_ci", "note"}`` of one class in one subgroup ([N] arrays)."""
    n, positives = int(len(y)), int(y.sum())
    entry: dict[str, Any] = {"n": n, "positives": positives, "auc": None, "auc_ci": None, "note": None}
    if min(positives, n - positives) < min_positives:
        entry["note"] = f"too few {'positives' if positives < min_positives else 'negatives'} (< {min_positives})"
        return entry
    entry["auc"] = float(skm.roc_auc_score(y, prob))
    if resamples:
        draws = bootstrap.bootstrap(y[:, None], prob[:, None], patients, resamples=resamples, seed=seed)
        entry["auc_ci"] = list(bootstrap.confidence_interval(draws["auc"][:, 0], level))
    return entry


def subgroup_metrics(frame: pd.DataFrame, classes: Sequence[str], *, resamples: int, seed: int,
                     level: float = 0.95, min_positives: int = MIN_POSITIVES) -> dict[str, Any]:
    """Per attribute, subgroup and class metrics of a ``predictions.csv`` frame.

    Args:
        frame: ``predictions.csv`` (``patient``, ``label_C`` with NaN where masked, ``prob_C``, and the
            attribute columns ``view``, ``projection``, ``sex``, ``age`` where present).

    Returns:
        ``{"min_positives": int, "attributes": {attribute: {subgroup: {"n", "patients", "classes":
        {C: cell}}}}}``; subgroups in order of size (largest first).
    """
    out: dict[str, Any] = {"min_positives": min_positives, "attributes": {}}
    for name, labels in groups(frame).items():
        table = {}
        for value in labels.value_counts().index:
            rows = frame[(labels == value).to_numpy()]
            entry = {"n": int(len(rows)), "patients": int(rows["patient"].nunique()), "classes": {}}
            for c in classes:
                known = rows[columns.label(c)].notna().to_numpy()
                entry["classes"][c] = cell(rows.loc[known, columns.label(c)].to_numpy().astype(int),
                                           rows.loc[known, columns.probability(c)].to_numpy(np.float64),
                                           rows.loc[known, "patient"].astype(str).to_numpy(),
                                           resamples=resamples, seed=seed, level=level, min_positives=min_positives)
            table[str(value)] = entry
        out["attributes"][name] = table
    return out
