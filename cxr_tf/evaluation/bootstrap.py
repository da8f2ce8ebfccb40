"""Vectorised patient-level bootstrap of ROC AUC and average precision.

Images of one patient are correlated, so confidence intervals resample patients, not images (the
practice of CheXpert and CheXNet follow-ups). A resample is a vector of per-image multiplicities: how
often the image's patient was drawn. With the scores of a class sorted once, every weighted AUC and AP
follows from two cumulative sums over that order (all weight, positive weight), read at the edges of
each positive's tie group, for a block of resamples at once: about four passes over [block, N] per
class, where the textbook formulas take dozens. Point estimates are scikit-learn's own
(``metrics.py``); the weighted formulas here equal ``roc_auc_score``/``average_precision_score`` with
``sample_weight``, ties included (tests check it to 1e-9). ``benchmarks/bootstrap.py`` times it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

# Resamples drawn and scored together: [CHUNK, N] float64 work arrays stay near 50 MB at N = 100k.
CHUNK = 64


def patient_codes(patients: np.ndarray) -> np.ndarray:
    """[N] int codes 0..P-1 of patient identifiers of any dtype."""
    return np.unique(np.asarray(patients).astype(str), return_inverse=True)[1].ravel()


def patient_weights(patients: np.ndarray, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Per-image multiplicities of ``resamples`` patient-level bootstrap draws, in blocks.

    Args:
        patients: [N] patient identifiers (any dtype).
        resamples: number of bootstrap draws R.
        seed: seed of the draws.

    Yields:
        float64 [<=CHUNK, N] blocks (R rows in all): image i counted ``w[r, i]`` times in resample r.
    """
    codes = patient_codes(patients)
    for counts in _patient_counts(int(codes.max()) + 1, resamples, seed):
        yield counts[:, codes]


def _patient_counts(n_patients: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """[<=CHUNK, P] int32 blocks: how often each patient is drawn in P draws with replacement."""
    rng = np.random.default_rng(seed)
    for lo in range(0, resamples, CHUNK):
        rows = min(CHUNK, resamples - lo)
        drawn = rng.integers(0, n_patients, size=(rows, n_patients))
        flat = (drawn + np.arange(rows)[:, None] * n_patients).ravel()
        # int32: integer cumulative sums are exact and run ~8x faster than float64 ones.
        yield np.bincount(flat, minlength=rows * n_patients).reshape(rows, n_patients).astype(np.int32)


@dataclass(frozen=True)
class _SortedClass:
    """One class's predictions in ascending score order, with each positive's tie-group edges."""

    columns: np.ndarray      # [N] column of each sorted image in the weight matrix (its patient)
    positives: np.ndarray    # [P] sorted positions of the positives
    below_all: np.ndarray    # [P] images strictly below the positive's tie group
    below_pos: np.ndarray    # [P] positives strictly below it
    through_all: np.ndarray  # [P] images up to the end of the tie group
    through_pos: np.ndarray  # [P] positives up to the end of the tie group

    @classmethod
    def of(cls, y: np.ndarray, score: np.ndarray, columns: np.ndarray | None = None) -> "_SortedClass":
        """``columns[i]``: the weight column of image i (its patient code); default: its own."""
        order = np.argsort(score, kind="mergesort")
        sorted_y, sorted_score = np.asarray(y)[order].astype(bool), np.asarray(score)[order]
        n = len(order)
        new_group = np.r_[True, sorted_score[1:] != sorted_score[:-1]]
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
        group_end = np.r_[np.flatnonzero(new_group)[1:], n][np.cumsum(new_group) - 1]  # exclusive
        pos_before = np.r_[0, np.cumsum(sorted_y)]  # positives among the first i images
        positives = np.flatnonzero(sorted_y)
        start, end = group_start[positives], group_end[positives]
        columns = order if columns is None else np.asarray(columns)[order]
        return cls(columns, positives, start, pos_before[start], end, pos_before[end])

    def scores(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(AUC [R], AP [R]) of every weight row; NaN where a row lacks positives or negatives.

        ``weights``: [R, C] with C the number of columns (patients), read through ``columns``;
        integer weights (patient counts) take the fast exact integer path.
        """
        w = np.take(weights, self.columns, axis=1)
        cum_all = _cumsum0(w)
        w_pos = np.take(w, self.positives, axis=1)
        cum_pos = _cumsum0(w_pos)
        total_all, total_pos = cum_all[:, -1].astype(np.float64), cum_pos[:, -1].astype(np.float64)
        total_neg = total_all - total_pos
        below_all = np.take(cum_all, self.below_all, axis=1).astype(np.float64)
        below_pos = np.take(cum_pos, self.below_pos, axis=1).astype(np.float64)
        neg_below = below_all - below_pos
        neg_through = (np.take(cum_all, self.through_all, axis=1)
                       - np.take(cum_pos, self.through_pos, axis=1)).astype(np.float64)
        w_pos = w_pos.astype(np.float64)
        # A positive beats the negatives below its score and ties with half of those at its score.
        wins = np.einsum("rp,rp->r", w_pos, neg_below + neg_through) * 0.5
        # AP: precision of the threshold at the positive's score (everything scoring >= it).
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = (total_pos[:, None] - below_pos) / (total_all[:, None] - below_all)
            precision = np.where(w_pos > 0, precision, 0.0)
            auc = np.where((total_pos > 0) & (total_neg > 0), wins / (total_pos * total_neg), np.nan)
            ap = np.where(total_pos > 0, np.einsum("rp,rp->r", w_pos, precision) / total_pos, np.nan)
        return auc, ap


def _cumsum0(values: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 1 with a leading 0 column: ``out[:, i]`` = sum of the first i."""
    out = np.zeros((values.shape[0], values.shape[1] + 1), values.dtype)
    np.cumsum(values, axis=1, dtype=values.dtype, out=out[:, 1:])
    return out


def weighted_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of each weight row (weights: [R, N] >= 0; y: [N] 0/1; score: [N]) -> float64 [R]."""
    return _SortedClass.of(y, score).scores(weights)[0]


def weighted_average_precision(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision (scikit-learn's step-wise definition) of each weight row -> float64 [R]."""
    return _SortedClass.of(y, score).scores(weights)[1]


def bootstrap(y: np.ndarray, scores: np.ndarray, patients: np.ndarray, *, resamples: int = 1000,
              seed: int = 0) -> dict[str, np.ndarray]:
    """Bootstrap ROC AUC and AP of every class, resampling patients.

    Args:
        y: [N, K] binary labels. scores: [N, K] scores. patients: [N] patient ids.
        resamples: number of draws R. seed: seed of the draws (the same draws serve every class).

    Returns:
        ``{"auc": float64 [R, K], "ap": float64 [R, K]}``; NaN where a draw has no positive/negative.
    """
    y, scores, codes = np.asarray(y), np.asarray(scores), patient_codes(patients)
    classes = [_SortedClass.of(y[:, k], scores[:, k], codes) for k in range(y.shape[1])]
    out = {"auc": np.empty((resamples, len(classes))), "ap": np.empty((resamples, len(classes)))}
    row = 0
    # Patient counts are read per class in that class's score order: one gather per class and block.
    for counts in _patient_counts(int(codes.max()) + 1, resamples, seed):
        rows = slice(row, row + len(counts))
        for k, sorted_class in enumerate(classes):
            out["auc"][rows, k], out["ap"][rows, k] = sorted_class.scores(counts)
        row += len(counts)
    return out


def dropped(values: np.ndarray) -> int:
    """How many bootstrap draws are NaN: resamples without a positive or a negative, left out of intervals."""
    return int(np.count_nonzero(~np.isfinite(np.asarray(values, np.float64))))


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap values (NaN draws ignored)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)
