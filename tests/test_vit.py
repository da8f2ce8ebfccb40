"""The Vision Transformer of the zoo: heads, training, reload without cxr_tf, stages, transfer, sizes."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from cxr_tf.errors import UserError
from cxr_tf.models import MODELS, build_model, freeze, vit

MICRO = "vit_micro"


@pytest.fixture
def micro(monkeypatch) -> str:
    """A ViT of width 32, depth 2 and 2 heads, registered for this test only (Registry has no removal)."""
    monkeypatch.setitem(MODELS._items, MICRO, vit.backbone(dim=32, depth=2, heads=2))
    return MICRO


def pixels(model: keras.Model, n: int = 2, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, *model.input_shape[1:])) * 255).astype("float32")


@pytest.mark.parametrize("head, channels, shape", [("multilabel", "gray3", (2, 4)), ("multiclass", "gray1", (2, 4)),
                                                   ("multilabel3", "enhance", (2, 4, 3))])
def test_each_head_gives_logits_of_its_shape(micro, head, channels, shape):
    model = build_model(micro, num_classes=4, head=head, image_size=32, channels=channels)
    out = model.predict(pixels(model), verbose=0)
    assert out.shape == shape and np.isfinite(out).all()


def test_the_head_reads_the_class_token():
    model = build_model("vit_tiny", num_classes=2, image_size=32)
    assert model.get_layer("embed_position").get_weights()[0].shape == (1 + 2 * 2, 192)
    assert model.get_layer("head_pool").input.shape == (None, 1, 1, 192)


def test_a_tiny_vit_lowers_its_loss_on_a_toy_batch_and_trains_every_weight(micro):
    keras.utils.set_random_seed(0)
    model = build_model(micro, num_classes=2, image_size=32)
    before = [w.numpy().copy() for w in model.trainable_weights]
    x = pixels(model, n=8)
    y = np.random.default_rng(1).integers(0, 2, (8, 2)).astype("float32")
    # Eager: tracing the training step costs more than the three steps it runs.
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True), run_eagerly=True)
    losses = model.fit(x, y, batch_size=8, epochs=3, verbose=0).history["loss"]
    assert losses[2] < losses[1] < losses[0]
    unchanged = [w.path for w, old in zip(model.trainable_weights, before) if np.array_equal(w.numpy(), old)]
    assert not unchanged


def test_a_saved_vit_names_only_keras_objects_and_its_input_layer_and_reloads_with_identical_outputs(micro, tmp_path):
    model = build_model(micro, num_classes=3, image_size=32, dropout=0.1)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as saved:
        config = saved.read("config.json").decode()
    assert set(re.findall(r'"registered_name": "(cxr_tf>[^"]*)"', config)) == {"cxr_tf>GrayToRGB"}
    assert config.count("cxr_tf") == 2  # the input layer's module and registered name
    x = pixels(model)
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_a_saved_vit_reloads_in_safe_mode_in_a_fresh_process_that_imports_only_the_zoo(micro, tmp_path):
    model = build_model(micro, num_classes=3, image_size=32)
    model.save(tmp_path / "m.keras")
    x = pixels(model)
    np.save(tmp_path / "x.npy", x)
    script = ("import sys, keras, numpy as np, cxr_tf.models; "
              f"m = keras.saving.load_model({str(tmp_path / 'm.keras')!r}, safe_mode=True); "
              f"np.save({str(tmp_path / 'y.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)); "
              "assert not any(n.startswith(('cxr_tf.training', 'cxr_tf.serving')) for n in sys.modules)")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0), atol=1e-5)


def test_stage_one_is_the_embedding_and_each_further_stage_one_block(micro):
    model = build_model(micro, num_classes=2, image_size=32)
    frozen = freeze.freeze_stages(model, 2)
    assert {n.split("_")[0] for n in frozen} == {"embed", "block1"}
    assert not model.get_layer("embed_position").trainable and model.get_layer("block2_attention").trainable
    freeze.freeze_stages(model, 3)
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"head_logits"}
    with pytest.raises(UserError, match="--freeze-stages 4: vit_micro has 3 stages"):
        freeze.freeze_stages(model, 4)


def test_freeze_backbone_then_unfreeze_restores_every_backbone_weight(micro):
    model = build_model(micro, num_classes=2, image_size=32)
    every = len(model.trainable_weights)
    freeze.freeze_backbone(model)
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"head_logits"}
    freeze.unfreeze(model)
    assert len(model.trainable_weights) == every


def test_transfer_from_a_run_keeps_the_encoder_and_skips_a_head_of_another_shape(micro, tmp_path):
    donor = build_model(micro, num_classes=5, image_size=32)
    donor.save(tmp_path / "best.keras")
    model = build_model(micro, num_classes=2, image_size=32, weights=str(tmp_path))
    for name in ("embed_class_token", "embed_position", "block2_mlp1"):
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0], donor.get_layer(name).get_weights()[0])
    assert model.get_layer("head_logits").get_weights()[0].shape == (32, 2)


def test_an_image_size_that_is_not_a_multiple_of_16_is_a_user_error():
    with pytest.raises(UserError, match="--image-size 40: .*multiple of its patch size 16"):
        build_model("vit_tiny", num_classes=2, image_size=40)


def test_imagenet_weights_for_a_vit_without_a_keras_hub_preset_are_a_user_error():
    # vit_base has one (vit_base_patch16_224_imagenet, tests/test_models_hub.py); vit_tiny has none.
    with pytest.raises(UserError, match="no ImageNet weights for vit_tiny in Keras or KerasHub; use --weights none"):
        build_model("vit_tiny", num_classes=2, image_size=32, weights="imagenet")


@pytest.mark.parametrize("name, backbone_params", [
    pytest.param("vit_tiny", 5_524_416, marks=pytest.mark.slow),    # DeiT-Ti: 5.72 M with its head of 193,000
    pytest.param("vit_small", 21_665_664, marks=pytest.mark.slow),  # DeiT-S: 22.05 M with its head of 385,000
    ("vit_base", 85_798_656),    # ViT-B/16: 86.57 M with its head of 769,000
])
def test_backbones_at_224_have_the_papers_parameter_counts(name, backbone_params):
    model = build_model(name, num_classes=1000, image_size=224)
    assert model.count_params() - model.get_layer("head_logits").count_params() == backbone_params
