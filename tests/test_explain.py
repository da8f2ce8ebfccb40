"""Grad-CAM heatmaps, overlays and the box hit rate (``cxr_tf.evaluation.explain``, ``python -m cxr_tf.explain``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_tf import cli
from cxr_tf import explain as explain_cli
from cxr_tf.evaluation import explain, explanations
from cxr_tf.models.heads import HEADS
from tests.conftest import PHANTOM_CLASSES

SIDE = 32
# Class 0 sees only the top-right quadrant, class 1 only the bottom-left one: (rows, columns) cropped away.
QUADRANT_CROPS = {0: ((0, SIDE // 2), (SIDE // 2, 0)), 1: ((SIDE // 2, 0), (0, SIDE // 2))}
# Expected peak quadrant (x > half, y > half) of each class.
QUADRANTS = {0: (True, False), 1: (False, True)}


def quadrant_model(head: str, stride: int = 1):
    """A two-class zoo-shaped model whose class k logit is the mean of a ReLU map of quadrant k only.

    ``stride`` 8 makes the feature map 4x4, so the heatmap comes from upsampling a coarse map.
    """
    import keras

    pixels = keras.Input((SIDE, SIDE, 1), name="pixels")
    maps = []
    for k, crop in QUADRANT_CROPS.items():
        x = keras.layers.Cropping2D(crop, name=f"crop{k}")(pixels)
        x = keras.layers.ZeroPadding2D(crop, name=f"pad{k}")(x)
        kernel = 3 if stride == 1 else stride
        maps.append(keras.layers.Conv2D(1, kernel, strides=stride, padding="same", use_bias=False, name=f"conv{k}",
                                        kernel_initializer=keras.initializers.Constant(1 / kernel**2))(x))
    x = keras.layers.ReLU(name="features")(keras.layers.Concatenate(name="stack")(maps))
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    if head == "multilabel3":
        kernel = np.zeros((2, 6), np.float32)
        kernel[0, 1] = kernel[1, 4] = 1.0  # positive state (index 1) of class k reads channel k
        x = keras.layers.Dense(6, name="head_logits", kernel_initializer=keras.initializers.Constant(kernel))(x)
        x = keras.layers.Reshape((2, 3), name="head_states")(x)
    else:
        x = keras.layers.Dense(2, name="head_logits", kernel_initializer="identity")(x)
    return keras.Model(pixels, x)


def two_blobs() -> np.ndarray:
    """float32 [1, SIDE, SIDE, 1]: equal bright discs in the top-right and bottom-left quadrants."""
    image = np.full((SIDE, SIDE), 20, np.uint8)
    for centre in ((3 * SIDE // 4, SIDE // 4), (SIDE // 4, 3 * SIDE // 4)):
        cv2.circle(image, centre, SIDE // 8, 220, -1)
    return image[np.newaxis, ..., np.newaxis].astype(np.float32)


@pytest.mark.parametrize("head, stride", [("multilabel", 1), ("multiclass", 1), ("multilabel3", 1), ("multilabel", 8)])
@pytest.mark.parametrize("class_index", [0, 1])
def test_cam_peaks_in_the_quadrant_the_class_logit_sees(head, stride, class_index):
    heatmap = explain.grad_cam(quadrant_model(head, stride), two_blobs(), class_index, HEADS.get(head))
    assert heatmap.shape == (1, SIDE, SIDE) and heatmap.dtype == np.float32
    x, y = explain.peak(heatmap[0])
    assert (x > SIDE / 2, y > SIDE / 2) == QUADRANTS[class_index]


@pytest.mark.parametrize("head", ["multilabel", "multiclass", "multilabel3"])
def test_one_class_per_image_gives_each_image_the_map_of_its_own_class(head):
    model, images = quadrant_model(head, 1), np.concatenate([two_blobs()] * 2)
    mixed = explain.grad_cam(model, images, [1, 0], HEADS.get(head))
    np.testing.assert_allclose(mixed[0], explain.grad_cam(model, images[:1], 1, HEADS.get(head))[0], atol=1e-6)
    np.testing.assert_allclose(mixed[1], explain.grad_cam(model, images[:1], 0, HEADS.get(head))[0], atol=1e-6)
    assert [(x > SIDE / 2, y > SIDE / 2) for x, y in map(explain.peak, mixed)] == [QUADRANTS[1], QUADRANTS[0]]


def test_more_images_than_one_pass_holds_get_the_maps_they_get_in_one_pass(monkeypatch):
    model, images = quadrant_model("multilabel", 1), np.concatenate([two_blobs()] * 3)
    whole = explain.grad_cam(model, images, [0, 1, 0], HEADS.get("multilabel"))
    monkeypatch.setattr(explain, "CAM_BATCH", 2)
    np.testing.assert_allclose(explain.grad_cam(model, images, [0, 1, 0], HEADS.get("multilabel")), whole, atol=1e-6)


def test_feature_layer_is_the_last_map_before_the_head():
    assert explain.feature_layer(quadrant_model("multilabel")).name == "features"


@pytest.mark.parametrize("name, size, layer, grid", [
    ("cnn5", 64, "block4_relu", 8),  # block5's 4x4 map is below MIN_CAM_SIDE; pooling looked through
    ("cnn5", 256, "block5_relu", 16),
    ("vit_tiny", 32, "block12_norm1", 2),  # tokens entering the last attention, 2x2 patches + class token
])
def test_zoo_models_give_a_unit_range_map_from_their_last_feature_layer(name, size, layer, grid):
    from cxr_tf.models import build_model

    model = build_model(name, num_classes=2, image_size=size)
    assert explain.feature_layer(model).name == layer
    assert explain.feature_layer(model).output.shape[1] in (grid, grid * grid + 1)
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 1)).astype(np.float32)  # gray in
    heatmaps = explain.grad_cam(model, images, 1, HEADS.get("multilabel"))
    assert heatmaps.shape == (2, size, size) and heatmaps.dtype == np.float32
    assert 0.0 <= heatmaps.min() and heatmaps.max() <= 1.0


def test_named_layer_that_is_no_feature_map_is_refused():
    with pytest.raises(ValueError, match="head_logits"):
        explain.feature_layer(quadrant_model("multilabel"), "head_logits")


def test_peak_of_a_plateau_is_its_centroid_and_a_zero_map_has_none():
    heatmap = np.zeros((8, 8), np.float32)
    heatmap[0:2, 4:8] = 1.0
    assert explain.peak(heatmap) == (6.0, 1.0)
    assert explain.peak(np.zeros((8, 8), np.float32)) is None


def test_box_fraction_counts_pixel_centres_in_the_union_of_boxes():
    boxes = np.array([[0, 0, 4, 4], [2, 2, 6, 4], [4, 0, 6, 4]], np.float64)  # 16 + 4 + 4 of 64 pixels
    assert explain.box_fraction(boxes, 8) == pytest.approx(24 / 64)


def test_overlay_is_bgr_at_display_size_with_boxes_drawn():
    from cxr_tf.io.imaging import Transform

    gray = np.zeros((64, 64), np.uint8)
    heatmap = np.zeros((32, 32), np.float32)
    image = explain.overlay(gray, heatmap, Transform(0.5, 0.5, 0, 0), np.array([[8.0, 8.0, 24.0, 24.0]]))
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert tuple(image[32, 64]) == (0, 255, 0)  # the box's top edge, zoomed 4x
    assert image[128, 128, 0] > image[128, 128, 2]  # a cold (blue) heatmap elsewhere


# ---------------------------------------------------------------------------------------------- phantom run


@pytest.fixture(scope="module")
def model_and_run(phantom_run):
    from cxr_tf.training import runs

    run = runs.load(phantom_run)
    return run.load_model(), run


def boxed_pairs(records: Path, split: str, classes: list[str]) -> dict[str, int]:
    """Boxed (record, class) pairs per class, counted straight from the tf.train.Examples."""
    import tensorflow as tf

    from cxr_tf.records import features, info as records_info

    info = records_info.RecordsInfo.load(str(records))
    counts = dict.fromkeys(classes, 0)
    for path in records_info.shard_paths(str(records), info, split):
        for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
            example = tf.train.Example.FromString(serialized)
            labels = example.features.feature[features.BOX_LABEL_KEY].int64_list.value
            for name in {info.classes[label] for label in labels} & set(classes):
                counts[name] += 1
    return counts


def test_cam_of_the_phantom_model_is_one_map_per_image_in_unit_range(model_and_run, phantom_records):
    model, run = model_and_run
    example = next(explain.boxed_examples(str(phantom_records), "test", run.classes, image_size=64))
    heatmaps = explain.grad_cam(model, np.stack([example["image"]] * 2), 0, run.head)
    assert heatmaps.shape == (2, 64, 64) and heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0.0 and heatmaps.max() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def records_explained(phantom_run, phantom_records, tmp_path_factory):
    out = tmp_path_factory.mktemp("explain_records")
    code = cli.run(explain_cli.main, ["--run", str(phantom_run), "--records", str(phantom_records),
                                      "--split", "test", "--out", str(out)])
    assert code == 0
    return out


def test_hit_rate_counts_exactly_the_boxed_pairs_of_the_run_classes(records_explained, phantom_records):
    table = json.loads((records_explained / "hit_rate.json").read_text())
    expected = boxed_pairs(phantom_records, "test", PHANTOM_CLASSES)
    assert {c: table[c]["boxes"] for c in PHANTOM_CLASSES} == expected
    assert table["overall"]["boxes"] == sum(expected.values()) > 0
    for row in table.values():
        assert row["rate"] is None or 0.0 <= row["rate"] <= 1.0
        assert row["hits"] <= row["boxes"]


def test_hit_rates_of_the_trained_phantom_model_are_reported(records_explained):
    table = json.loads((records_explained / "hit_rate.json").read_text())
    for name in ("Cardiomegaly", "Effusion"):
        print(f"test split, {name}: {table[name]}")  # the figures the report quotes (pytest -s)
        assert 0.0 <= table[name]["rate"] <= 1.0 and 0.0 < table[name]["chance"] < 1.0


def test_records_mode_writes_overlays_with_boxes(records_explained):
    overlays = sorted(records_explained.glob("*.png"))
    assert len(overlays) == explanations.RECORD_OVERLAYS
    image = cv2.imread(str(overlays[0]))
    assert image.shape[:2] == (256, 256)
    assert np.any(np.all(image == (0, 255, 0), axis=-1))  # a box outline


# ---------------------------------------------------------------------------------------------- CLI on files


@pytest.fixture(scope="module")
def image_files(phantom_records, tmp_path_factory) -> list[Path]:
    """A phantom as PNG, the same as JPEG, and a corrupt file."""
    folder = tmp_path_factory.mktemp("explain_images")
    source = next(Path(phantom_records).parent.joinpath("ph").rglob("*.png"))
    gray = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(folder / "chest.png"), gray)
    cv2.imwrite(str(folder / "chest_jpeg.jpg"), gray)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return [folder / "chest.png", folder / "chest_jpeg.jpg", folder / "broken.png"]


def test_cli_writes_overlays_of_png_and_jpeg_and_skips_a_corrupt_file(phantom_run, image_files, tmp_path, capsys):
    code = cli.run(explain_cli.main, ["--run", str(phantom_run), *map(str, image_files), "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(written) == 2 and written[0].startswith("chest_") and written[1].startswith("chest_jpeg_")
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and skipped[0].startswith(f"skipped {image_files[2]}: ")
    assert "1 unreadable file(s) skipped" in captured.out


def test_cli_explains_every_class_above_its_threshold(phantom_run, image_files, tmp_path):
    from cxr_tf.training import runs

    run_copy = tmp_path / "run"
    shutil.copytree(phantom_run, run_copy)
    runs.load(run_copy).save_thresholds(dict.fromkeys(PHANTOM_CLASSES, 0.0), 0.0, "val")
    out = tmp_path / "out"
    assert cli.run(explain_cli.main, ["--run", str(run_copy), str(image_files[0]), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == sorted(f"chest_{c}.png" for c in PHANTOM_CLASSES)


def test_cli_class_flag_selects_the_class(phantom_run, image_files, tmp_path):
    args = ["--run", str(phantom_run), str(image_files[0]), "--class", "Edema", "--out", str(tmp_path)]
    assert cli.run(explain_cli.main, args) == 0
    assert [p.name for p in tmp_path.glob("*.png")] == ["chest_Edema.png"]


@pytest.mark.parametrize("flag, value", [("--class", "Fracture"), ("--layer", "no_such_layer")])
def test_cli_unknown_class_or_layer_is_a_one_line_user_error(phantom_run, image_files, tmp_path, capsys, flag, value):
    args = ["--run", str(phantom_run), str(image_files[0]), flag, value, "--out", str(tmp_path)]
    assert cli.run(explain_cli.main, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {flag}") and value in err
    assert not list(tmp_path.glob("*.png"))
