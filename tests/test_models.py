"""The model zoo: every network takes the 0-255 gray image, returns logits, reloads, freezes and transfers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cxr_tf.errors import UserError
from cxr_tf.models import MODELS, build_model, freeze

SMALL = ["cnn5", "baseline_cnn", "resnet18", "s4_baseline_cnn", "s4_scratch_cnn"]


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


def test_keras_applications_trained_from_scratch_follow_batch_statistics_as_fast_as_pytorch():
    # MobileNetV2 ships momentum 0.999: inference would use statistics hundreds of steps behind the weights.
    model = build_model("mobilenetv2", num_classes=2, image_size=32, weights="none")
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
    assert frozen and all(n.startswith(("stem_", "stack1_", "stack2_")) for n in frozen)
    assert 0 < len(model.trainable_weights) < before
    assert not model.get_layer("stack1_block1_bn1").trainable
    assert model.get_layer("stack3_block1_conv1").trainable
    with pytest.raises(UserError, match="--freeze-stages"):
        freeze.freeze_stages(model, 9)


# S3 freezes 0-4 of ResNet's "4 blocks"; the stem (7x7 conv, max-pool) goes with block 1. cnn5's blocks are
# its five conv blocks. Frozen layer-name prefixes per number of frozen blocks:
RESNET_FROZEN = {0: (), 1: ("stem_", "stack1_"), 2: ("stem_", "stack1_", "stack2_"),
                 3: ("stem_", "stack1_", "stack2_", "stack3_"),
                 4: ("stem_", "stack1_", "stack2_", "stack3_", "stack4_")}
CNN5_FROZEN = {k: tuple(f"block{i}_" for i in range(1, k + 1)) for k in range(5)}


@pytest.mark.parametrize("name, table", [("resnet18", RESNET_FROZEN), pytest.param("resnet34", RESNET_FROZEN,
                                                                                     marks=pytest.mark.slow),
                                         ("cnn5", CNN5_FROZEN)])
@pytest.mark.parametrize("blocks", [0, 1, 2, 3, 4])
def test_freeze_stages_k_freezes_s3s_first_k_blocks_and_nothing_else(name, table, blocks):
    model = build_model(name, num_classes=4, head="multiclass", image_size=32)
    freeze.freeze_stages(model, blocks)
    weighted = [layer for layer in model.layers if layer.weights and not layer.name.startswith("preprocess_")]
    frozen = {layer.name for layer in weighted if not layer.trainable}
    assert frozen == {layer.name for layer in weighted if table[blocks] and layer.name.startswith(table[blocks])}
    assert model.get_layer("head_logits").trainable


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


def layer_kinds(model: keras.Model) -> list[str]:
    """The model's conv, pool, dense, dropout and normalisation layers in order, as short words."""
    kinds = {keras.layers.Conv2D: "conv", keras.layers.MaxPooling2D: "pool", keras.layers.Dense: "dense",
             keras.layers.Dropout: "dropout", keras.layers.BatchNormalization: "bn"}
    return [word for layer in model.layers for kind, word in kinds.items() if type(layer) is kind]


def test_s4_baseline_cnn_is_two_convolutions_one_2x2_pool_and_two_dense_layers_with_relu():
    model = build_model("s4_baseline_cnn", num_classes=3, head="multiclass", image_size=32)
    assert layer_kinds(model) == ["conv", "conv", "pool", "dense", "dense"]
    assert model.get_layer("block2_pool").pool_size == (2, 2)
    assert [type(layer).__name__ for layer in model.layers if "relu" in layer.name] == ["ReLU"] * 3
    assert model.output_shape == (None, 3)


def test_s4_scratch_cnn_is_five_convolutions_one_pool_three_dense_layers_and_dropout():
    model = build_model("s4_scratch_cnn", num_classes=3, head="multiclass", image_size=64)
    assert layer_kinds(model) == ["conv"] * 5 + ["pool", "dense", "dropout", "dense", "dense"]
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]) == 7
    assert model.output_shape == (None, 3)


def test_freeze_stages_follows_the_stages_the_model_declares_not_its_name():
    model = build_model("cnn5", num_classes=2, image_size=32)
    freeze.declare_stages(model, [("block2_",)])  # what a builder with one stage, block 2, would record
    assert freeze.freeze_stages(model, 1) and not model.get_layer("block2_conv").trainable
    assert model.get_layer("block1_conv").trainable
    with pytest.raises(UserError, match="--freeze-stages 2: cnn5 has 1 stages"):
        freeze.freeze_stages(model, 2)
    plain = keras.Model(model.inputs, model.outputs, name="cnn5")
    with pytest.raises(ValueError, match="declares no backbone stages"):
        freeze.freeze_stages(plain, 1)
