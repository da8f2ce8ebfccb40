"""Patient-level train/val/test splits of a Manifest.

Every method assigns whole patients, never single images, so no patient's films are in two
splits (a patient's follow-up films look alike; image-level splits inflate test AUC). Methods:

* ``multilabel``: iterative stratification (Sechidis et al. 2011, via iterstrat's
  ``MultilabelStratifiedShuffleSplit``) over patients, on each patient's label union (positive in
  any of their images), so every class keeps its prevalence in every split.
* ``labelset``: patients grouped by their exact combination of the chosen classes and each group
  cut by the fractions (the CheXpert thesis' way; rare combinations stay together).
* ``source``: the dataset's official split (``source_split``). Its test split is never touched. With
  ``val`` given, or when the source has no val split (Kermany's Kaggle copy has train and test only),
  a stratified, patient-level validation set of that share is carved from the source's train patients
  (``multilabel`` on them); the source's own val patients, if any, go back to train first (Kermany's
  Mendeley val is 16 images without one viral pneumonia).
* ``random``: patients shuffled and cut.
* ``auto``: ``source`` when the source has train and test, else ``multilabel``.

The stratified methods read each image's labels under ``assign_splits``' ``uncertainty`` and
``propagate_parents`` (``--split-uncertainty``, ``--split-propagate-parents``): by default positive means a
state of 1 (uncertain and blank count as negative); S1 split on its processed labels (U-Ones after the
CheXpert label tree), ``uncertainty="ones", propagate_parents="uncertain"``.

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
from cxr_tf.registry import Choices, Registry

SPLITS = ("train", "val", "test")
# --val when not given: the share of patients in val for every method but ``source`` (which keeps the
# source's own val split when it has one).
DEFAULT_VAL = 0.1
# A patient found in several official splits goes to the most held-out one, so none leaks.
HELD_OUT_ORDER = {"test": 2, "val": 1, "train": 0}

# fn(patient label union [P, K] 0/1 indexed by sorted patient id, manifest, val, test, seed) -> split per patient;
# val is None only for ``source`` when --val was not given.
Splitter = Callable[[pd.DataFrame, mf.Manifest, float | None, float, int], pd.Series]
SPLITTERS: Registry[Splitter] = Registry("split method")
log = reporting.logger("splits")


def assign_splits(manifest: mf.Manifest, method: str, *, val: float | None, test: float, seed: int,
                  classes: Sequence[str] | None = None, uncertainty: str = "zeros",
                  propagate_parents: str = "none") -> mf.Manifest:
    """A copy of ``manifest`` with a ``split`` column (``train``/``val``/``test``) assigned by patient.

    Args:
        method: a name in ``SPLITTERS`` or ``auto``.
        val, test: shares of patients (0-1, summing below 1) for validation and test; ``val=None`` is
            ``DEFAULT_VAL``, except for ``source`` (see the module docstring).
        seed: seed of every random choice; same seed and manifest -> same split.
        classes: classes the stratification balances; ``None`` or empty = all.
        uncertainty, propagate_parents: how the stratification reads labels: uncertain as ``zeros``
            (negative) or ``ones`` (positive), and the label tree (``none``, ``positive``, ``uncertain``;
            ``cxr_tf.pipeline.label_policy``), as the input pipeline will.

    Raises:
        UserError: bad fractions, unknown method or class, or ``source`` on a source without splits.
    """
    shown = DEFAULT_VAL if val is None else val
    if not (0 <= shown < 1 and 0 <= test < 1 and shown + test < 1):
        raise UserError(f"--val {shown} and --test {test} must be in [0, 1) and sum below 1")
    chosen = list(classes) if classes else list(manifest.classes)
    unknown = [c for c in chosen if c not in manifest.classes]
    if unknown:
        raise UserError(f"--split-classes: unknown class(es) {unknown}; valid: {', '.join(manifest.classes)}")
    SPLIT_METHODS.check(method, "--split")
    if method == "auto":
        official = set(manifest.frame[mf.SOURCE_SPLIT].unique())
        method = "source" if {"train", "test"} <= official else "multilabel"
    splitter = SPLITTERS.get(method)
    if method != "source" and val is None:
        val = DEFAULT_VAL
    frame = manifest.frame
    positive = positive_labels(manifest, chosen, uncertainty, propagate_parents)
    union = positive.groupby(frame[mf.PATIENT]).any().astype("int8").sort_index()
    per_patient = splitter(union, manifest, val, test, seed)
    out = frame.copy()
    out[mf.SPLIT] = frame[mf.PATIENT].map(per_patient).astype(str)
    return dataclasses.replace(manifest, frame=out)


def positive_labels(manifest: mf.Manifest, classes: Sequence[str], uncertainty: str = "zeros",
                    propagate_parents: str = "none") -> pd.DataFrame:
    """bool ``[N, len(classes)]``: each image's positives under the label policy, as training will see them.

    Uses the input pipeline's own policy (``label_policy``) on the raw states of every class, so a parent
    outside ``classes`` still passes positivity down the tree (Pneumonia -> Consolidation).
    """
    frame = manifest.frame
    if uncertainty == "zeros" and propagate_parents == "none":
        return (frame[list(classes)] == labels.POSITIVE).fillna(False).astype(bool)
    from cxr_tf.pipeline import label_policy

    labels.SPLIT_UNCERTAINTY_POLICIES.check(uncertainty, "--split-uncertainty")
    labels.PROPAGATION_MODES.check(propagate_parents, "--split-propagate-parents")
    state = frame[manifest.classes].astype("float64").fillna(labels.BLANK).to_numpy().astype("int64")
    ancestors = label_policy.ancestor_matrix(manifest.classes, manifest.label_tree)
    state = np.asarray(label_policy.propagate(state, ancestors, propagate_parents))
    table, _ = label_policy.policy_tables(uncertainty, "zeros")
    positive = table[state - labels.BLANK] > 0
    index = [manifest.classes.index(c) for c in classes]
    return pd.DataFrame(positive[:, index], index=frame.index, columns=list(classes))


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
def source_split(union: pd.DataFrame, manifest: mf.Manifest, val: float | None, test: float, seed: int) -> pd.Series:
    """The official split; a patient in several official splits goes to the most held-out of them.

    ``val`` (a share of the source's train and val patients) carves a stratified val split from them;
    ``None`` keeps the source's val split, or carves ``DEFAULT_VAL`` when the source has none. ``test``
    is unused: the official test split is kept as it is.
    """
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
    per_patient = best.map(names).reindex(union.index)
    if val is None:
        if (per_patient == "val").any():
            return per_patient
        val = DEFAULT_VAL
    pool = per_patient.index[per_patient != "test"]
    per_patient[pool] = multilabel_split(union.loc[pool], manifest, val, 0.0, seed)
    return per_patient


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


# --split: a splitter, or ``auto`` (``source`` when the source has train and test, else ``multilabel``).
SPLIT_METHODS = Choices("split method", (*SPLITTERS.names(), "auto"))
