"""Flags shared by every command that reads a dataset: which adapter, where its files are, how to split.

``python -m cxr_tf.manifest`` uses ``SourceConfig`` as it is; ``python -m cxr_tf.build_records``
subclasses it and adds how records are stored. Field names are the flags (``label_sep`` is
``--label-sep``) and the recipe keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cxr_tf.config import SEED_MAX, option, required
from cxr_tf.labels import PROPAGATION_MODES, SPLIT_UNCERTAINTY_POLICIES
from cxr_tf.registry import Choices, lazy

# chexpert: the split of valid.csv's radiologist-labelled images; which views to keep.
VALID_SPLITS = Choices("valid split", ("val", "test"))
VIEWS = Choices("views", ("frontal", "lateral", "all"))
# kermany: normal/pneumonia, or normal/bacteria/virus.
KERMANY_CLASSES = Choices("kermany class count", (2, 3))


@dataclass
class SourceConfig:
    """Adapter and split flags.

    Paths are as the user gave them; adapters check them and raise ``UserError`` naming the flag.
    """

    dataset: str = required("dataset adapter (see --list-datasets)", lists="datasets",
                            choices=lazy("cxr_tf.datasets", "DATASETS"))
    labels: Path | None = option(None, "label file (CSV, .csv.gz) or, for chexpert, the CheXpert-v1.0-small "
                                       "folder; csv: omit for folder mode")
    images: Path | None = option(None, "image root: the folder that the label file's paths are relative to "
                                       "(nih: searched recursively for the file names; chexpert: "
                                       "CheXpert-v1.0-small or the folder holding it)")
    bbox: Path | None = option(None, "nih: BBox_List_2017.csv, joined as boxes")
    test_list: Path | None = option(None, "nih: the official test_list.txt; its images are the source's test split "
                                          "and the others (train_val_list.txt) its train split")
    valid_split: str = option("val", "chexpert: the split of valid.csv's radiologist-labelled images: val, or "
                                     "test (the official test set, to compare with published results)",
                              choices=VALID_SPLITS)
    views: str = option("all", "chexpert: the views to keep", choices=VIEWS)
    classes: int = option(2, "kermany: 2 (normal/pneumonia) or 3 (normal/bacteria/virus)", choices=KERMANY_CLASSES)
    path_col: str | None = option(None, "csv: column holding the image path")
    patient_col: str | None = option(None, "csv: column holding the patient id (default: the path)")
    label_col: str | None = option(None, "csv: one column of --label-sep separated class names (multilabel)")
    label_sep: str = option("|", "csv: separator inside --label-col")
    class_cols: list[str] = option([], "csv: one column per class, values 1/0/-1/blank or true/false; "
                                           "with --label-col, the class list (other names: skipped rows)")
    split: str | None = option(None, "patient-level split method; auto = source when the dataset has an "
                                     "official train/test split, else multilabel",
                                choices=lazy("cxr_tf.datasets.splits", "SPLIT_METHODS"))
    split_classes: list[str] = option([], "classes the stratification balances (default: all)")
    split_uncertainty: str = option("zeros", "uncertain labels as the stratification sees them: zeros "
                                             "(negative) or ones (positive, U-Ones: S1)",
                                     choices=SPLIT_UNCERTAINTY_POLICIES)
    split_propagate_parents: str = option("none", "label tree as the stratification sees it: none, positive or "
                                                  "uncertain (a positive or uncertain child makes its parents "
                                                  "positive: S1)", choices=PROPAGATION_MODES)
    val: float | None = option(None, "share of patients in the validation split (default 0.1); with "
                                     "--split source it carves a stratified val from the source's train patients "
                                     "(default: keep the source's val split, or carve 0.1 when it has none)",
                               at_least=0, below=1)
    test: float = option(0.2, "share of patients in the test split", at_least=0, below=1)
    seed: int = option(0, "seed of the split (and of anything random)", at_least=0, at_most=SEED_MAX)
