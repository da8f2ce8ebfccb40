"""Keras applications in the zoo, with their ImageNet preprocessing as built-in layers and their stages.

``keras.applications.<family>.preprocess_input`` is re-expressed with ``Rescaling``/``Normalization``/a
frozen ``Dense`` so saved models reload without cxr_tf and take 0-255 pixels. Stages follow each
family's own layer names (``conv2_block1_...`` for ResNet, ``block3a_...`` for EfficientNet).
"""

from __future__ import annotations

from typing import Callable

import keras

from cxr_tf.models.cnn import BN_MOMENTUM
from cxr_tf.models.zoo import MODELS, Backbone

# ImageNet statistics of the two conventions (keras/src/applications/imagenet_utils.py).
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

RESNET_STAGES = (("conv1", "pool1"), ("conv2",), ("conv3",), ("conv4",), ("conv5", "post"))
DENSENET_STAGES = (("zero_padding2d", "conv1", "pool1"), ("conv2", "pool2"), ("conv3", "pool3"),
                   ("conv4", "pool4"), ("conv5", "bn", "relu"))
EFFICIENTNET_STAGES = (("rescaling", "normalization", "stem"), ("block1",), ("block2",), ("block3",),
                       ("block4",), ("block5",), ("block6",), ("block7",), ("top",))
VGG_STAGES = tuple((f"block{i}_",) for i in range(1, 6))
MOBILENETV2_STAGES = (("Conv1", "bn_Conv1", "Conv1_relu", "expanded_conv"),) + tuple(
    (f"block_{i}_",) for i in range(1, 17)) + (("Conv_1", "out_relu"),)


def preprocessing(convention: str, x: keras.KerasTensor) -> keras.KerasTensor:
    """RGB 0-255 -> what a family's ImageNet weights expect (``torch``, ``tf``, ``caffe`` or ``none``)."""
    if convention == "torch":
        x = keras.layers.Rescaling(1 / 255.0, name="preprocess_scale")(x)
        return keras.layers.Normalization(mean=TORCH_MEAN, variance=[s * s for s in TORCH_STD],
                                          name="preprocess_imagenet")(x)
    if convention == "tf":
        return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess_scale")(x)
    if convention == "caffe":
        # RGB -> BGR and mean subtraction as a frozen 1x1 linear map (no Lambda: reloads without code).
        bgr = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
        return keras.layers.Dense(3, name="preprocess_bgr", trainable=False,
                                  kernel_initializer=keras.initializers.Constant(bgr),
                                  bias_initializer=keras.initializers.Constant([-m for m in CAFFE_MEAN_BGR]))(x)
    return x  # EfficientNet scales 0-255 itself


def _follow_batch_statistics(network: keras.Model) -> None:
    """Give a randomly initialised network's batch norms PyTorch's moving-average momentum (0.1 there).

    Keras applications use 0.99 (MobileNetV2 0.999): the moving statistics, which inference uses, lag the
    fast-changing activations of a network trained from scratch by hundreds of steps. Measured on S5's
    phantoms (ResNet50, 32 px, 200 steps): training AUC 0.88 while the inference-mode validation AUC was
    0.50 (every image one class). ImageNet weights keep their own, already settled, statistics and momentum.
    """
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM


def _register(name: str, constructor: Callable[..., keras.Model], convention: str,
              stages: tuple[tuple[str, ...], ...]) -> None:
    def build(pixels: keras.KerasTensor, imagenet: bool) -> keras.KerasTensor:
        x = preprocessing(convention, pixels)
        network = constructor(include_top=False, weights="imagenet" if imagenet else None, input_tensor=x)
        if not imagenet:
            _follow_batch_statistics(network)
        return network.output

    MODELS.register(name)(Backbone(build, stages, imagenet=True))


_A = keras.applications
for _name, _constructor, _convention, _stages in [
    ("densenet121", _A.DenseNet121, "torch", DENSENET_STAGES),
    ("densenet169", _A.DenseNet169, "torch", DENSENET_STAGES),
    ("densenet201", _A.DenseNet201, "torch", DENSENET_STAGES),
    *[(f"efficientnetb{i}", getattr(_A, f"EfficientNetB{i}"), "none", EFFICIENTNET_STAGES) for i in range(8)],
    ("resnet50", _A.ResNet50, "caffe", RESNET_STAGES),
    ("resnet101", _A.ResNet101, "caffe", RESNET_STAGES),
    ("resnet152", _A.ResNet152, "caffe", RESNET_STAGES),
    ("resnet50v2", _A.ResNet50V2, "tf", RESNET_STAGES),
    ("resnet101v2", _A.ResNet101V2, "tf", RESNET_STAGES),
    ("resnet152v2", _A.ResNet152V2, "tf", RESNET_STAGES),
    ("vgg16", _A.VGG16, "caffe", VGG_STAGES),
    ("mobilenetv2", _A.MobileNetV2, "tf", MOBILENETV2_STAGES),
]:
    _register(_name, _constructor, _convention, _stages)
