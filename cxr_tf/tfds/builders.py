"""TFDS builders of the sources cxr_tf reads: ``cxr_nih``, ``cxr_chexpert``, ``cxr_kermany``,
``cxr_covid_radiography`` (the user's downloaded files in ``manual_dir``) and ``cxr_phantoms`` (drawn on
the spot, no download).

Like TFDS' own ``chexpert`` builder, but each builder runs the cxr_tf adapter of its source, splits by
patient (``splits.assign_splits``) and encodes every image with build_records' per-image function
(``encode.make_record``), so an example holds what a build_records record holds: the stored gray image,
the four raw label states (positive, negative, uncertain, blank) of every class, patient id, path, view
and boxes (``tfds_metadata.feature_connector``). Unusable images are left out, as build_records skips
them, and counted in the log.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import tensorflow_datasets as tfds

from cxr_tf import reporting
from cxr_tf.datasets import catalog, load_manifest
from cxr_tf.datasets import manifest as mf
from cxr_tf.datasets.source import SourceConfig
from cxr_tf.errors import UserError
from cxr_tf.io.workers import worker_count
from cxr_tf.records import build, encode, tfds_metadata

log = reporting.logger("tfds")

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(eq=False)
class CxrConfig(tfds.core.BuilderConfig):
    """How a cxr_tf builder stores and splits its source (build_records' flags of the same names).

    Attributes:
        image_size: stored side, pixels. resize: ``pad``, ``squash`` or ``crop``. encoding: ``png`` or ``jpeg``.
        split: patient-level split method (``splits.SPLITTERS`` name or ``auto``). val, test: shares of
            patients. seed: seed of the split and of the shard order.
        classes: kermany only: 2 (normal/pneumonia) or 3 (normal/bacteria/virus).
    """

    image_size: int = 256
    resize: str = "pad"
    encoding: str = "png"
    split: str = "auto"
    val: float = 0.1
    test: float = 0.2
    seed: int = 0
    classes: int = 2


class SourceBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the cxr_tf builders: ``DATASET`` names the adapter; ``source`` says where its files are."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [CxrConfig(name="default", description="256 px PNG, patient-level split")]
    DATASET = ""

    def classes(self) -> list[str]:
        """The classes of ``labels/state``, in order (the adapter's)."""
        return list(catalog.entry(self.DATASET).classes)

    def source(self, files: Path) -> SourceConfig:
        """The adapter flags for the user's files in ``files`` (``manual_dir``)."""
        return SourceConfig(dataset=self.DATASET, images=files)

    def source_files(self, dl_manager: tfds.download.DownloadManager) -> Path:
        """Where the source's files are: the user's ``manual_dir``."""
        return Path(os.fspath(dl_manager.manual_dir))

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        entry = catalog.entry(self.DATASET)
        return self.dataset_info_from_configs(
            description=f"{entry.title}, read by cxr_tf's {self.DATASET} adapter. "
                        + tfds_metadata.description(self.classes()),
            features=tfds_metadata.feature_connector(len(self.classes()), cfg.image_size, cfg.encoding),
            homepage=entry.download or None,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        cfg = self.builder_config
        source = dataclasses.replace(self.source(self.source_files(dl_manager)), split=cfg.split, val=cfg.val,
                                     test=cfg.test, seed=cfg.seed, classes=cfg.classes)
        manifest = load_manifest(source)
        if list(manifest.classes) != self.classes():
            raise UserError(f"{self.name}: the adapter gave classes {manifest.classes}, expected {self.classes()}")
        if len(manifest.skipped):
            log.info("%s: %d rows skipped by the adapter (first: %s)", self.name, len(manifest.skipped),
                     manifest.skipped.iloc[0].to_dict())
        options = encode.RecordOptions(image_size=cfg.image_size, resize=cfg.resize, encoding=cfg.encoding,
                                       seed=cfg.seed)
        tasks = build.tasks_from_manifest(manifest)
        split_of = manifest.frame[mf.SPLIT].to_numpy()
        return {split: self._generate_examples(manifest.image_root, options,
                                               [t for t, s in zip(tasks, split_of) if s == split])
                for split in SPLITS if (split_of == split).any()}

    def _generate_examples(self, root: Path, options: encode.RecordOptions,
                           tasks: list[encode.ImageTask]) -> Iterator[tuple[str, dict[str, Any]]]:
        skipped = 0
        for task in tasks:
            result = encode.make_record(task, root, options)
            if isinstance(result, encode.Skipped):
                skipped += 1
                log.debug("%s: %s", result.path, result.reason)
                continue
            yield result.path, tfds_metadata.example(result)
        if skipped:
            log.info("%s: %d unusable images left out", self.name, skipped)


class CxrNih(SourceBuilder):
    """NIH ChestX-ray14 (Wang et al. 2017): 14 findings and No Finding, boxes when BBox_List_2017.csv is there."""

    DATASET = "nih"
    LABEL_FILES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
    BOX_FILE = "BBox_List_2017.csv"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download ChestX-ray14 from https://nihcc.app.box.com/v/ChestXray-NIHCC and put Data_Entry_2017_v2020.csv "
        "(or Data_Entry_2017.csv), optionally BBox_List_2017.csv, and the images_001 ... images_012 folders in "
        "manual_dir.")

    def source(self, files: Path) -> SourceConfig:
        labels = next((files / name for name in self.LABEL_FILES if (files / name).is_file()), None)
        if labels is None:
            raise UserError(f"{files} holds none of {', '.join(self.LABEL_FILES)}; "
                            + self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        boxes = files / self.BOX_FILE
        return SourceConfig(dataset=self.DATASET, labels=labels, images=files,
                            bbox=boxes if boxes.is_file() else None)


class CxrChexpert(SourceBuilder):
    """CheXpert-v1.0-small (Irvin et al. 2019): 14 observations with their uncertain and blank labels kept."""

    DATASET = "chexpert"
    FOLDER = "CheXpert-v1.0-small"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Register at https://stanfordmlgroup.github.io/competitions/chexpert/, download CheXpert-v1.0-small.zip "
        "and unzip it in manual_dir (manual_dir/CheXpert-v1.0-small/train.csv ...).")

    def source(self, files: Path) -> SourceConfig:
        folder = files / self.FOLDER if (files / self.FOLDER).is_dir() else files
        return SourceConfig(dataset=self.DATASET, labels=folder, images=folder)


class CxrKermany(SourceBuilder):
    """Kermany et al. 2018 pediatric pneumonia: normal/pneumonia (``2classes``) or normal/bacteria/virus."""

    DATASET = "kermany"
    BUILDER_CONFIGS = [CxrConfig(name="2classes", classes=2, description="Normal, Pneumonia"),
                       CxrConfig(name="3classes", classes=3, description="Normal, Bacteria, Virus")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download ChestXRay2017.zip from https://data.mendeley.com/datasets/rscbjbr9sj/2 and unzip it in "
        "manual_dir (manual_dir/chest_xray/{train,test}/{NORMAL,PNEUMONIA}/).")

    def classes(self) -> list[str]:
        entry = catalog.entry(self.DATASET)
        return list(entry.classes if self.builder_config.classes == 2 else entry.options["classes_3"])


class CxrCovidRadiography(SourceBuilder):
    """COVID-19 Radiography Database: COVID, Normal, Lung Opacity, Viral Pneumonia (file name = patient)."""

    DATASET = "covid_radiography"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download the COVID-19 Radiography Database from "
        "https://www.kaggle.com/datasets/tawsifurrahman/covid19-radiography-database and unzip it in "
        "manual_dir (manual_dir/COVID-19_Radiography_Dataset/COVID/...).")


@dataclasses.dataclass(eq=False)
class PhantomConfig(CxrConfig):
    """Phantoms as ``python -m cxr_tf.synth --style nih`` draws them (its flags of the same names).

    Attributes:
        n: images. size: drawn side, pixels. difficulty: 0 obvious .. 1 subtle. label_noise: probability
        that a report gets a finding wrong.
    """

    n: int = 2000
    size: int = 256
    difficulty: float = 0.5
    label_noise: float = 0.02


class CxrPhantoms(CxrNih):
    """cxr_tf's synthetic chest X-ray phantoms with known findings and boxes, NIH classes; nothing to download.

    The phantoms are drawn into the download directory in ChestX-ray14's layout and read by the NIH
    adapter, so they go through the same adapter, split and encoder as NIH itself.
    """

    MANUAL_DOWNLOAD_INSTRUCTIONS = None
    BUILDER_CONFIGS = [
        PhantomConfig(name="default", split="multilabel", description="2000 phantoms, 256 px"),
        PhantomConfig(name="tiny", split="multilabel", n=60, size=64, image_size=64, difficulty=0.3,
                      description="60 phantoms, 64 px (tests, demos)"),
    ]

    def source_files(self, dl_manager: tfds.download.DownloadManager) -> Path:
        from cxr_tf.phantoms import dataset, generate, writers

        cfg = self.builder_config
        out = Path(os.fspath(dl_manager.download_dir)) / f"cxr_phantoms_{cfg.name}"
        shutil.rmtree(out, ignore_errors=True)  # left by an interrupted preparation
        out.mkdir(parents=True)
        style = writers.STYLES.get("nih")
        chances = dataset.resolve_prevalence(style.findings, [], style.single_label)
        specs = generate.plan(cfg.n, cfg.seed, chances, single_label=False, label_noise=cfg.label_noise)
        # Worker start-up costs more than it saves on a few hundred small images.
        workers = 1 if cfg.n * cfg.size**2 < 200 * 256**2 else worker_count(0)
        dataset.write_dataset(out, specs, "nih", cfg.size, cfg.difficulty, cfg.seed, workers,
                              writers.LabelOptions(cfg.size, cfg.seed))
        return out
