"""Patient-level train/val/test splits of a Manifest.

Every method assigns whole patients, never single images, so no patient's films are in two
splits (a patient's follow-up films look alike; image-level splits inflate test AUC). Methods:

* ``multilabel``: iterative stratification (Sechidis et al. 2011, via iterstrat's
  ``MultilabelStratifiedShuffleSplit``) over patients, on each patient's label union (positive in
  any of their images), so every class keeps its prevalence in every split.
* ``labelset``: patients grouped by their exact combination of the chosen classes and each group
  cut by the fractions (the CheXpert thesis' way; rare combinations stay together).
* ``source``: the dataset's official split (``source_split``).
* ``random``: patients shuffled and cut.
* ``auto``: ``source`` when the source has train and test, else ``multilabel``.

All are deterministic given the seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from cxr_tf import labels, reporting
from cxr_tf.datasets import manifest as mf
from cxr_tf.errors import UserError
from cxr_tf.registry import Registry

SPLITS = ("train", "val", "test")
# A patient found in several official splits goes to the most held-out one, so none leaks.
HELD_OUT_ORDER = {"test": 2, "val": 1, "train": 0}

# fn(patient label union [P, K] 0/1 indexed by sorted patient id, manifest, val, test, seed) -> split per patient
Splitter = Callable[[pd.DataFrame, mf.Manifest, float, float, int], pd.Series]
SPLITTERS: Registry[Splitter] = Registry("split method")
log = reporting.logger("splits")


def assign_splits(manifest: mf.Manifest, method: str, *, val: float, test: float, seed: int,
                  classes: Sequence[str] | None = None) -> mf.Manifest:
    """A copy of ``manifest`` with a ``split`` column (``train``/``val``/``test``) assigned by patient.

    Args:
        method: a name in ``SPLITTERS`` or ``auto``.
        val, test: shares of patients (0-1, summing below 1) for validation and test.
        seed: seed of every random choice; same seed and manifest -> same split.
        classes: classes the stratification balances; ``None`` or empty = all.

    Raises:
        UserError: bad fractions, unknown method or class, or ``source`` on a source without splits.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise UserError(f"--val {val} and --test {test} must be in [0, 1) and sum below 1")
    chosen = list(classes) if classes else list(manifest.classes)
    unknown = [c for c in chosen if c not in manifest.classes]
    if unknown:
        raise UserError(f"--split-classes: unknown class(es) {unknown}; valid: {', '.join(manifest.classes)}")
    if method == "auto":
        official = set(manifest.frame[mf.SOURCE_SPLIT].unique())
        method = "source" if {"train", "test"} <= official else "multilabel"
    splitter = SPLITTERS.get(method)
    frame = manifest.frame
    union = (frame[chosen] == labels.POSITIVE).fillna(False).groupby(frame[mf.PATIENT]).any()
    union = union.astype("int8").sort_index()
    per_patient = splitter(union, manifest, val, test, seed)
    out = frame.copy()
    out[mf.SPLIT] = frame[mf.PATIENT].map(per_patient).astype(str)
    return dataclasses.replace(manifest, frame=out)


def _cut(order: np.ndarray, val: float, test: float) -> np.ndarray:
    """Split names for ``len(order)`` items taken in ``order``: test first, then val, the rest train."""
    n = len(order)
    n_test, n_val = round(n * test), round(n * val)
    names = np.full(n, "train", dtype=object)
    names[order[:n_test]] = "test"
    names[order[n_test:n_test + n_val]] = "val"
    return names


@SPLITTERS.register("random")
def random_split(union: pd.DataFrame, manifest: mf.Manifest, val: float, test: float, seed: int) -> pd.Series:
    """Patients shuffled with ``seed`` and cut: round(P*test) test, round(P*val) val, the rest train."""
    order = np.random.default_rng(seed).permutation(len(union))
    return pd.Series(_cut(order, val, test), index=union.index)


@SPLITTERS.register("labelset")
def labelset_split(union: pd.DataFrame, manifest: mf.Manifest, val: float, test: float, seed: int) -> pd.Series:
    """Each combination of the chosen classes (per patient) cut by the fractions on its own."""
    group = union.groupby(list(union.columns), sort=True).ngroup().to_numpy() if union.shape[1] else \
        np.zeros(len(union), dtype=int)
    # A random order inside each group: sort by (group, random key), then count positions per group.
    ranked = pd.DataFrame({"group": group, "key": np.random.default_rng(seed).permutation(len(union))})
    ranked = ranked.sort_values(["group", "key"], kind="stable")
    position = ranked.groupby("group").cumcount().sort_index().to_numpy()
    size = ranked.groupby("group")["key"].transform("size").sort_index().to_numpy()
    n_test, n_val = np.round(size * test), np.round(size * val)
    names = np.where(position < n_test, "test", np.where(position < n_test + n_val, "val", "train"))
    return pd.Series(names.astype(object), index=union.index)


@SPLITTERS.register("multilabel")
def multilabel_split(union: pd.DataFrame, manifest: mf.Manifest, val: float, test: float, seed: int) -> pd.Series:
    """Iterative stratification over patients: test off the whole, then val off the rest."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    y = union.to_numpy()
    out = np.full(len(union), "train", dtype=object)
    remaining = np.arange(len(union))
    for name, share in (("test", test), ("val", val / (1 - test) if test < 1 else 0.0)):
        size = round(share * len(remaining))
        if size == 0 or size >= len(remaining):
            continue
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        _, held = next(splitter.split(np.zeros((len(remaining), 1)), y[remaining]))
        out[remaining[held]] = name
        remaining = np.delete(remaining, held)
    return pd.Series(out, index=union.index)


@SPLITTERS.register("source")
def source_split(union: pd.DataFrame, manifest: mf.Manifest, val: float, test: float, seed: int) -> pd.Series:
    """The official split; a patient in several official splits goes to the most held-out of them."""
    frame = manifest.frame
    official = frame[mf.SOURCE_SPLIT]
    if (official == "").any():
        raise UserError(f"--split source: {manifest.dataset} has no official split for "
                        f"{int((official == '').sum())} row(s); use multilabel, labelset or random")
    rank = official.map(HELD_OUT_ORDER)
    best = rank.groupby(frame[mf.PATIENT]).max()
    spread = rank.groupby(frame[mf.PATIENT]).nunique()
    if (spread > 1).any():
        log.warning("%d patient(s) are in more than one official split; each is put in its most held-out one",
                    int((spread > 1).sum()))
    names = {code: name for name, code in HELD_OUT_ORDER.items()}
    return best.map(names).reindex(union.index)


def split_table(manifest: mf.Manifest) -> dict[str, dict]:
    """Per split: rows, patients and prevalence per class (share of the split's rows that are positive, 0-1)."""
    frame = manifest.frame
    if mf.SPLIT not in frame:
        raise ValueError("manifest has no split column; assign splits first")
    table = {}
    for name in [s for s in SPLITS if s in set(frame[mf.SPLIT])]:
        rows = frame[frame[mf.SPLIT] == name]
        positive = (rows[manifest.classes] == labels.POSITIVE).fillna(False).mean()
        table[name] = {"rows": len(rows), "patients": int(rows[mf.PATIENT].nunique()),
                       "prevalence": {c: round(float(positive[c]), 4) for c in manifest.classes}}
    return table


def format_split_table(manifest: mf.Manifest) -> str:
    """``split_table`` as aligned text: one row per split, prevalence in percent per class."""
    table = split_table(manifest)
    width = max([len(c) for c in manifest.classes] + [8])
    lines = [f"{'':{width}} " + " ".join(f"{name:>9}" for name in table)]
    lines.append(f"{'rows':{width}} " + " ".join(f"{t['rows']:>9}" for t in table.values()))
    lines.append(f"{'patients':{width}} " + " ".join(f"{t['patients']:>9}" for t in table.values()))
    for c in manifest.classes:
        lines.append(f"{c:{width}} " + " ".join(f"{100 * t['prevalence'][c]:>8.2f}%" for t in table.values()))
    return "\n".join(lines)
