"""ImageNet weights from KerasHub presets: the whole path on presets saved from randomly initialised backbones.

Presets cannot be downloaded here, so each test saves a KerasHub backbone (random weights, random BatchNorm
statistics so that a wrong copy shows) with ``save_to_preset`` and loads it with ``--weights DIR``.
"""

from __future__ import annotations

import sys

import keras
import numpy as np
import pytest

from cxr_tf import cli, fit
from cxr_tf.errors import UserError
from cxr_tf.evaluation.explain import feature_layer
from cxr_tf.models import MODELS, build_model, vit
from tests.conftest import PHANTOM_CLASSES

keras_hub = pytest.importorskip("keras_hub")

TORCH_MEAN, TORCH_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def randomised(backbone):
    """Kernels keep their (random) initialisation; the rest, zeros and ones at first, are drawn too."""
    rng = np.random.default_rng(0)
    for w in backbone.weights:
        if w.path.endswith(("moving_variance", "gamma")):
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        elif not w.path.endswith("kernel"):
            w.assign(rng.normal(0, 0.1, w.shape).astype("float32"))
    return backbone


@pytest.fixture(scope="module")
def resnet18_preset(tmp_path_factory):
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(None, None, 3))
    path = tmp_path_factory.mktemp("presets") / "resnet18"
    randomised(backbone).save_to_preset(str(path))
    return path, backbone


def gray(side: int) -> np.ndarray:
    """float32 [2, side, side, 1] 0-255: the models' input (they repeat it to 3 channels, gray3)."""
    return (np.random.default_rng(1).random((2, side, side, 1)) * 255).astype("float32")


def test_resnet18_from_a_local_preset_gives_the_presets_features(resnet18_preset):
    path, backbone = resnet18_preset
    model = build_model("resnet18", num_classes=3, head="multiclass", image_size=32, weights=str(path))
    x = gray(32)
    ours = keras.Model(model.inputs, model.get_layer("stack4_block2_out").output).predict(x, verbose=0)
    theirs = np.asarray(backbone((np.repeat(x, 3, axis=-1) / 255 - TORCH_MEAN) / TORCH_STD))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_vit_from_a_local_preset_gives_the_presets_class_token(tmp_path, monkeypatch):
    # A ViT of width 32, depth 2 and 2 heads, registered for this test only (Registry has no removal).
    monkeypatch.setitem(MODELS._items, "vit_micro", vit.backbone(dim=32, depth=2, heads=2))
    monkeypatch.setitem(MODELS._items, "vit_micro_wide", vit.backbone(dim=64, depth=2, heads=2))
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=16, num_layers=2, num_heads=2,
                                            hidden_dim=32, mlp_dim=128)
    randomised(backbone).save_to_preset(str(tmp_path / "vit"))
    model = build_model("vit_micro", num_classes=3, image_size=32, weights=str(tmp_path / "vit"))
    x = gray(32)
    ours = keras.Model(model.inputs, model.get_layer("encoder_class_token_map").output).predict(x, verbose=0)
    theirs = np.asarray(backbone(np.repeat(x, 3, axis=-1) / 127.5 - 1.0))[:, 0]
    np.testing.assert_allclose(ours[:, 0, 0], theirs, atol=1e-4)
    with pytest.raises(UserError, match="does not fit vit_micro_wide"):
        build_model("vit_micro_wide", num_classes=3, image_size=32, weights=str(tmp_path / "vit"))


def test_weights_imagenet_loads_the_models_keras_hub_preset(resnet18_preset, monkeypatch):
    path, _ = resnet18_preset
    asked = []
    load = keras_hub.models.Backbone.from_preset

    def from_preset(name, **kwargs):
        asked.append(name)
        return load(str(path), **kwargs)

    monkeypatch.setattr(keras_hub.models.Backbone, "from_preset", from_preset)
    build_model("resnet18", num_classes=2, image_size=32, weights="imagenet")
    assert asked == ["hf://timm/resnet18.tv_in1k"]  # torchvision's ImageNet weights, which S3 fine-tuned


def test_an_unreachable_preset_or_a_missing_keras_hub_is_one_line_saying_what_to_do(monkeypatch):
    def offline(name, **kwargs):
        raise ConnectionError("Failed to resolve 'www.kaggle.com'\nmore lines")

    monkeypatch.setattr(keras_hub.models.Backbone, "from_preset", offline)
    with pytest.raises(UserError, match=r"resnet18\.tv_in1k.*Failed to resolve.*save_to_preset") as err:
        build_model("resnet18", num_classes=2, image_size=32, weights="imagenet")
    assert "\n" not in str(err.value)
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(UserError, match=r"pip install -e '\.\[hub\]'"):
        build_model("resnet18", num_classes=2, image_size=32, weights="imagenet")


@pytest.mark.slow
def test_fit_from_a_local_preset_freezes_s3_blocks_by_name_and_grad_cam_reads_the_zoos_layers(
        resnet18_preset, phantom_records, tmp_path):
    path, _ = resnet18_preset
    run = tmp_path / "run"
    assert cli.run(fit.main, ["--records", str(phantom_records), "--model", "resnet18", "--weights", str(path),
                              "--freeze-stages", "1", "--classes", *PHANTOM_CLASSES, "--image-size", "32",
                              "--batch-size", "8", "--epochs", "1", "--steps-per-epoch", "2",
                              "--schedule", "constant", "--out", str(run)]) == 0
    model = keras.saving.load_model(run / "best.keras", compile=False)
    assert not model.get_layer("stack1_block1_conv1").trainable and model.get_layer("stack2_block1_conv1").trainable
    assert feature_layer(model).name.startswith(("stem_", "stack"))  # the zoo's names, not KerasHub's
