"""Shared pieces of the export and predict tests: phantom images as users' files, in-process reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from tests import image_factory

from cxr_tf.io import imaging
from cxr_tf.training import runs
from cxr_tf.records import features, info

THRESHOLDS = {"Cardiomegaly": 0.3, "Effusion": 0.6, "Edema": 0.45}


def phantom_grays(records: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` test-split phantoms of ``records`` as uint8 [H, W]."""
    import tensorflow as tf

    shards = info.shard_paths(str(records), info.RecordsInfo.load(str(records)), "test")
    spec = {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}
    return [imaging.decode_gray8(tf.io.parse_single_example(example, spec)[features.IMAGE_KEY].numpy())
            for example in tf.data.TFRecordDataset(shards).take(count)]


def encoded_variants(gray: np.ndarray) -> dict[str, bytes]:
    """One phantom as the files users have: PNG, JPEG, non-square RGB, RGBA and 16-bit PNG."""
    wide = cv2.resize(gray, (96, 80), interpolation=cv2.INTER_LINEAR)  # not square: exercises resize=pad
    tinted = np.dstack([wide, np.clip(wide.astype(int) + 20, 0, 255), wide // 2]).astype(np.uint8)  # BGR
    return {
        "gray.png": image_factory.png(gray),
        "gray.jpg": image_factory.jpeg(gray),
        "tinted.png": image_factory.png(tinted),
        "alpha.png": image_factory.png(np.dstack([tinted, np.full(wide.shape, 255, np.uint8)])),
        "deep.png": image_factory.png(gray.astype(np.uint16) * 16 + 100),  # 12 significant bits
    }


def reference_probabilities(run: runs.Run, model, data: bytes, name: str = "") -> np.ndarray:
    """In-process prediction: ``input_spec.from_gray(decode_gray8(data))`` through the run's model, float [K]."""
    pixels = run.input_spec.from_gray(imaging.decode_gray8(data, name))
    return np.asarray(run.head.probabilities(model(pixels[None], training=False)))[0]


def run_with_thresholds(phantom_run: Path, directory: Path) -> runs.Run:
    """A copy of ``phantom_run`` in ``directory`` with ``THRESHOLDS``, as ``evaluate`` would leave it."""
    copy = runs.load(shutil.copytree(phantom_run, directory / "run"))
    copy.save_thresholds(THRESHOLDS, "youden", "val")
    return copy
