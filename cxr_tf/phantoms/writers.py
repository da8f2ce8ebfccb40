"""Output styles: where each image goes and which label files describe it.

Each style copies a real source's layout so that source's adapter reads the phantoms unchanged:

* ``nih``: ChestX-ray14 (``images_001/images/00000001_000.png``, ``Data_Entry_2017.csv``,
  ``BBox_List_2017.csv``);
* ``chexpert``: CheXpert-v1.0-small (``train.csv``/``valid.csv``, states 1.0/0.0/-1.0/blank,
  frontal views only);
* ``folders``: one folder per class, one class per image (``Normal/``, ``Effusion/``...);
* ``kermany``: Kermany's pediatric pneumonia set (``chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/``,
  ``person12_bacteria_40.png`` / ``IM-0012-0001.png``), normal, bacterial or viral pneumonia;
* ``covid_radiography``: the COVID-19 Radiography Database (``COVID-19_Radiography_Dataset/<class>/images/``).

The last two name their classes after the source and draw a phantom finding for each: phantoms have no
pneumonia types, so a finding with a similar look stands in (see ``KERMANY_KINDS``, ``COVID_FOLDERS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from cxr_tf.datasets import catalog
from cxr_tf.io import atomic
from cxr_tf.phantoms.anatomy import FIELD_CM
from cxr_tf.phantoms.findings import Box
from cxr_tf.phantoms.generate import DRAWN, REPORT, ImageSpec, rng_for
from cxr_tf.registry import Registry

# Header lines exactly as the real files have them (NIH's contain bracketed commas unquoted).
NIH_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
              "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")
NIH_BOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
# The eight findings NIH boxed (BBox_List_2017.csv), with that file's spelling of Infiltration.
NIH_BOX_NAMES = {"Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly", "Effusion": "Effusion",
                 "Infiltration": "Infiltrate", "Mass": "Mass", "Nodule": "Nodule", "Pneumonia": "Pneumonia",
                 "Pneumothorax": "Pneumothorax"}
NIH_IMAGES_PER_FOLDER = 10_000

# CheXpert's label columns, label tree, column names and folders are the adapter's (data_manifests/chexpert.toml),
# so the phantoms cannot drift from what the adapter reads.
_CHEXPERT = catalog.entry("chexpert")
CHEXPERT_COLUMNS = tuple(_CHEXPERT.classes)  # the label columns, in train.csv's order
CHEXPERT_HEADER = ",".join([*(_CHEXPERT.columns[role] for role in ("path", "sex", "age", "view", "projection")),
                            *CHEXPERT_COLUMNS])
CHEXPERT_ROOT = _CHEXPERT.options["path_prefix"].rstrip("/")  # the release's top folder, as its Path column starts
CHEXPERT_TABLES = {split: table for table, split in _CHEXPERT.options["splits"].items()}  # split -> label file
# NIH finding -> CheXpert observation (Irvin et al. 2019, Table 1 vocabulary).
CHEXPERT_NAMES = {"Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly", "Effusion": "Pleural Effusion",
                  "Infiltration": "Lung Opacity", "Mass": "Lung Lesion", "Nodule": "Lung Lesion",
                  "Pneumonia": "Pneumonia", "Pneumothorax": "Pneumothorax", "Consolidation": "Consolidation",
                  "Edema": "Edema"}
_BLANK, _NEGATIVE, _UNCERTAIN, _POSITIVE = "", "0.0", "-1.0", "1.0"
_RANK = {_BLANK: 0, _NEGATIVE: 1, _UNCERTAIN: 2, _POSITIVE: 3}

NORMAL = "Normal"
FOLDER_FINDINGS = ("Cardiomegaly", "Effusion", "Pneumothorax", "Pneumonia")

# Bacterial pneumonia is typically lobar consolidation, viral pneumonia an interstitial pattern
# (Kermany et al. 2018, Cell 172(5), Fig. 6): the phantom findings of the same look.
KERMANY_KINDS = {"Consolidation": "bacteria", "Infiltration": "virus"}
# Every (VAL_EVERY)-th patient outside the held-out test share goes to val/ (Kermany's Mendeley layout).
KERMANY_VAL_EVERY = 5
# COVID-19 Radiography Database class folders: COVID-19's diffuse bilateral opacities, focal lung opacity,
# and viral pneumonia, each drawn as the phantom finding closest in look.
COVID_FOLDERS = {"Infiltration": "COVID", "Consolidation": "Lung_Opacity", "Pneumonia": "Viral Pneumonia"}
COVID_ROOT = "COVID-19_Radiography_Dataset"


@dataclass(frozen=True)
class LabelOptions:
    """What label writers need beyond the specs.

    Attributes:
        size: written image side, pixels.
        seed: the data set's seed (report-level draws derive from it).
        uncertain: CheXpert style: share of reported positives written as uncertain (-1.0).
        blank: CheXpert style: share of negatives left blank (not mentioned by the report).
    """

    size: int
    seed: int
    uncertain: float = 0.0
    blank: float = 0.0


@dataclass(frozen=True)
class Style:
    """One output layout.

    Attributes:
        path: relative image path of a spec (POSIX).
        write_labels: writes the label files under the output directory, returns their paths.
        single_label: images carry at most one finding (class folders).
        findings: findings drawn when the user names none.
        holdout: the layout has the source's own held-out split (``--valid-share`` of the patients).
    """

    path: Callable[[ImageSpec], str]
    write_labels: Callable[[Path, list[ImageSpec], dict[int, dict[str, list[Box]]], LabelOptions], list[Path]]
    single_label: bool
    findings: tuple[str, ...]
    holdout: bool = False


STYLES: Registry[Style] = Registry("style")


def _leaves_first(tree: dict[str, str]) -> dict[str, str]:
    """A child -> parent label tree ordered deepest children first, so that raising parents in this order
    lets a raised parent raise its own parent in the same pass (Pneumonia -> Consolidation -> Lung Opacity)."""
    def depth(name: str) -> int:
        return 1 + depth(tree[name]) if name in tree else 0

    return dict(sorted(tree.items(), key=lambda edge: -depth(edge[0])))


# CheXpert's label hierarchy (Irvin et al. 2019, Fig. 2): a child's state raises its parent's.
CHEXPERT_PARENTS = _leaves_first(_CHEXPERT.label_tree)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write ``image`` (uint8 ``[H, W]``) as PNG atomically: a killed run never leaves a partial
    file under the final name."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path}")
    atomic.write_bytes(path, data.tobytes())


def _write_lines(path: Path, lines: list[str]) -> Path:
    atomic.write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def _nih_name(spec: ImageSpec) -> str:
    return f"{spec.patient:08d}_{spec.followup:03d}.png"


def _nih_path(spec: ImageSpec) -> str:
    return f"images_{spec.index // NIH_IMAGES_PER_FOLDER + 1:03d}/images/{_nih_name(spec)}"


def _nih_labels(out: Path, specs: list[ImageSpec], boxes: dict[int, dict[str, list[Box]]],
                options: LabelOptions) -> list[Path]:
    spacing = f"{FIELD_CM * 10 / options.size:.3f}"
    entries = [NIH_HEADER]
    box_rows = [NIH_BOX_HEADER]
    for spec in specs:
        labels = "|".join(spec.labels) or "No Finding"
        entries.append(f"{_nih_name(spec)},{labels},{spec.followup},{spec.patient},{spec.age},{spec.sex},"
                       f"{spec.projection},{options.size},{options.size},{spacing},{spacing}")
        for finding, found in boxes[spec.index].items():
            # A box is the reader's too: written only where the report names the finding.
            if finding in NIH_BOX_NAMES and finding in spec.labels:
                box_rows += [f"{_nih_name(spec)},{NIH_BOX_NAMES[finding]},{x},{y},{w},{h}" for x, y, w, h in found]
    return [_write_lines(out / "Data_Entry_2017.csv", entries), _write_lines(out / "BBox_List_2017.csv", box_rows)]


def _chexpert_path(spec: ImageSpec) -> str:
    split = "valid" if spec.holdout else "train"
    return f"{CHEXPERT_ROOT}/{split}/patient{spec.patient:05d}/study{spec.followup + 1}/view1_frontal.png"


def chexpert_states(spec: ImageSpec, rng: np.random.Generator, uncertain: float, blank: float) -> dict[str, str]:
    """CheXpert column -> written state (``"1.0"``, ``"0.0"``, ``"-1.0"`` or ``""``) of one image.

    Training rows come from a fallible labeller: reported positives may be uncertain, negatives
    often unmentioned (blank). Validation rows are radiologist consensus on the ground truth:
    0/1 only, as in CheXpert's valid.csv. A positive or uncertain child raises its parent to its
    own state (a negative child says nothing about the parent).
    """
    found = spec.findings if spec.holdout else spec.labels
    positive = {CHEXPERT_NAMES[f] for f in found}
    states = {}
    for column in CHEXPERT_COLUMNS[1:]:
        if spec.holdout:
            states[column] = _POSITIVE if column in positive else _NEGATIVE
        elif column in positive:
            states[column] = _UNCERTAIN if rng.random() < uncertain else _POSITIVE
        else:
            states[column] = _BLANK if rng.random() < blank else _NEGATIVE
    for child, parent in CHEXPERT_PARENTS.items():
        if states[child] in (_POSITIVE, _UNCERTAIN) and _RANK[states[child]] > _RANK[states[parent]]:
            states[parent] = states[child]
    abnormal = any(states[c] in (_POSITIVE, _UNCERTAIN) for c in CHEXPERT_COLUMNS[1:])
    states["No Finding"] = (_NEGATIVE if spec.holdout else _BLANK) if abnormal else _POSITIVE
    return states


def _chexpert_labels(out: Path, specs: list[ImageSpec], boxes: dict[int, dict[str, list[Box]]],
                     options: LabelOptions) -> list[Path]:
    tables: dict[bool, list[str]] = {False: [CHEXPERT_HEADER], True: [CHEXPERT_HEADER]}
    for spec in specs:
        states = chexpert_states(spec, rng_for(options.seed, REPORT, spec.index), options.uncertain, options.blank)
        sex = "Male" if spec.sex == "M" else "Female"
        tables[spec.holdout].append(f"{_chexpert_path(spec)},{sex},{spec.age},Frontal,{spec.projection},"
                                    + ",".join(states[c] for c in CHEXPERT_COLUMNS))
    root = out / CHEXPERT_ROOT
    return [_write_lines(root / CHEXPERT_TABLES["train"], tables[False]),
            _write_lines(root / CHEXPERT_TABLES["val"], tables[True])]


def folder_class(spec: ImageSpec) -> str:
    """The class folder of a single-label spec: its reported finding, or ``Normal``."""
    return spec.labels[0] if spec.labels else NORMAL


def _folder_path(spec: ImageSpec) -> str:
    return f"{folder_class(spec)}/{_nih_name(spec)}"


def _no_label_files(out: Path, specs: list[ImageSpec], boxes: dict[int, dict[str, list[Box]]],
                    options: LabelOptions) -> list[Path]:
    return []


def _kermany_path(spec: ImageSpec) -> str:
    """``chest_xray/<split>/<NORMAL|PNEUMONIA>/<name>``: held-out patients in test/, a share of the rest in val/."""
    split = "test" if spec.holdout else "val" if spec.patient % KERMANY_VAL_EVERY == 0 else "train"
    if not spec.labels:
        return f"chest_xray/{split}/NORMAL/IM-{spec.patient:04d}-{spec.followup + 1:04d}.png"
    return f"chest_xray/{split}/PNEUMONIA/person{spec.patient}_{KERMANY_KINDS[spec.labels[0]]}_{spec.index}.png"


def _covid_path(spec: ImageSpec) -> str:
    folder = COVID_FOLDERS[spec.labels[0]] if spec.labels else NORMAL
    return f"{COVID_ROOT}/{folder}/images/{folder}-{spec.index + 1}.png"


STYLES.register("nih")(Style(_nih_path, _nih_labels, single_label=False, findings=DRAWN))
STYLES.register("chexpert")(Style(_chexpert_path, _chexpert_labels, single_label=False, findings=DRAWN,
                                  holdout=True))
STYLES.register("folders")(Style(_folder_path, _no_label_files, single_label=True, findings=FOLDER_FINDINGS))
STYLES.register("kermany")(Style(_kermany_path, _no_label_files, single_label=True,
                                 findings=tuple(KERMANY_KINDS), holdout=True))
STYLES.register("covid_radiography")(Style(_covid_path, _no_label_files, single_label=True,
                                           findings=tuple(COVID_FOLDERS)))
