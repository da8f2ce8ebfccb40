"""The model zoo: every network takes the 0-255 gray image, returns logits, reloads, freezes and transfers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cxr_tf.errors import UserError
from cxr_tf.models import MODELS, build_model, freeze

SMALL = ["cnn5", "baseline_cnn", "resnet18"]


def pixels(model: keras.Model, n: int = 2) -> np.ndarray:
    return (np.random.default_rng(0).random((n, *model.input_shape[1:])) * 255).astype("float32")


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n in SMALL else pytest.mark.slow)
                                  for n in MODELS.names()])
def test_every_model_maps_0_255_pixels_to_logits(name):
    model = build_model(name, num_classes=3, image_size=32)
    out = model.predict(pixels(model), verbose=0)
    assert out.shape == (2, 3) and out.dtype == np.float32 and np.isfinite(out).all()


@pytest.mark.parametrize("head, shape", [("multilabel", (2, 4)), ("multiclass", (2, 4)), ("multilabel3", (2, 4, 3))])
def test_heads_give_logits_of_their_shape(head, shape):
    model = build_model("baseline_cnn", num_classes=4, head=head, image_size=32, channels="gray1")
    assert model.predict(pixels(model), verbose=0).shape == shape


@pytest.mark.parametrize("name", ["cnn5", "baseline_cnn", "resnet18"])
def test_networks_built_in_code_use_pytorchs_batchnorm_momentum(name):
    # The studies trained these in PyTorch (momentum 0.1 there = 0.9 here); Keras' 0.99 lags a small net.
    model = build_model(name, num_classes=2, image_size=32, weights="none")
    momenta = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}


@pytest.mark.parametrize("name", ["cnn5", pytest.param("densenet121", marks=pytest.mark.slow)])
def test_saved_models_reload_with_identical_outputs(tmp_path, name):
    model = build_model(name, num_classes=2, image_size=32, dropout=0.2)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    x = pixels(model)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_freezing_stages_keeps_the_rest_trainable_and_frozen_batchnorm_in_inference():
    model = build_model("resnet18", num_classes=2, image_size=32)
    before = len(model.trainable_weights)
    frozen = freeze.freeze_stages(model, 2)
    assert frozen and all(n.startswith(("stem_", "stack1_")) for n in frozen)
    assert 0 < len(model.trainable_weights) < before
    assert not model.get_layer("stack1_block1_bn1").trainable
    assert model.get_layer("stack2_block1_conv1").trainable
    with pytest.raises(UserError, match="--freeze-stages"):
        freeze.freeze_stages(model, 9)


def test_frozen_backbone_trains_the_head_only_and_unfreeze_keeps_preprocessing_fixed():
    model = build_model("resnet50", num_classes=2, image_size=32)
    freeze.freeze_backbone(model)
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"head_logits"}
    freeze.unfreeze(model)
    assert not model.get_layer("preprocess_bgr").trainable
    assert model.get_layer("conv2_block1_1_conv").trainable


def test_imagenet_weights_offline_name_the_file_and_the_cache(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.org/keras/densenet121_notop.h5: None -- offline")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.densenet.file_utils.get_file", offline)
    with pytest.raises(UserError, match=r"densenet121_notop\.h5.*models"):
        build_model("densenet121", num_classes=2, image_size=32, weights="imagenet")


def test_imagenet_for_a_model_keras_has_no_weights_for_is_a_user_error():
    with pytest.raises(UserError, match="no ImageNet weights for cnn5"):
        build_model("cnn5", num_classes=2, image_size=32, weights="imagenet")


def test_transfer_from_a_saved_model_skips_a_head_of_another_shape(tmp_path):
    donor = build_model("cnn5", num_classes=5, image_size=32)
    donor.save(tmp_path / "best.keras")
    model = build_model("cnn5", num_classes=2, image_size=32, weights=str(tmp_path))
    np.testing.assert_array_equal(model.get_layer("block3_conv").get_weights()[0],
                                  donor.get_layer("block3_conv").get_weights()[0])
    assert model.get_layer("head_logits").get_weights()[0].shape == (512, 2)
    with pytest.raises(UserError, match="--weights"):
        build_model("cnn5", num_classes=2, image_size=32, weights=str(tmp_path / "nope.keras"))
