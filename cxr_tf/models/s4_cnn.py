"""S4's two networks trained from scratch (BME course project, Kermany 3 classes), as S4 describes them.

S4 (section 2.2) gives their layer counts, not their sizes:

* ``s4_baseline_cnn``: "2 2-dimension convolution layers, a 2x2 pooling layer and 2 fully connected layers,
  with relu activation".
* ``s4_scratch_cnn``: "5 convolutional layers, a pooling layer, 3 fully connected layers, and a dropout
  layer, all with relu activations" (not S3's five-block ``cnn5``: one pool, three dense layers).

Not in the study (cxr_tf's choices, in the constants below): channel counts, 3x3 kernels, hidden widths,
the dropout rate and where it sits, and, for the 5-convolution network, stride 2 in every convolution —
with a single pool and unstrided convolutions its first dense layer would read 112x112x256 values at
224 px (3 billion weights). Neither network has batch normalisation: S4 names none.

The last fully connected layer of each is the zoo's ``head_logits``; the backbone ends with the hidden
dense layer(s), returned as a ``[B, 1, 1, units]`` map (the zoo's global pooling of it is the identity),
as ``vit.py`` returns its class token. Layers are named ``block{i}_*`` (convolutions) and ``fc{i}_*``
(hidden dense layers); each is a stage of ``--freeze-stages``.

Examples:
    >>> from cxr_tf.models import build_model
    >>> build_model("s4_baseline_cnn", num_classes=3, head="multiclass", image_size=32).output_shape
    (None, 3)
"""

from __future__ import annotations

import keras

from cxr_tf.models.zoo import MODELS, Backbone

# Not in the study: a common small-CNN width (PyTorch tutorials' 32 -> 64) and hidden layer.
BASELINE_FILTERS = (32, 64)
BASELINE_UNITS = (128,)
# Not in the study: doubling widths, two hidden layers and dropout 0.5 after the first (Krizhevsky et al.'s rate).
SCRATCH_FILTERS = (32, 64, 128, 128, 256)
SCRATCH_STRIDE = 2
SCRATCH_UNITS = (256, 128)
SCRATCH_DROPOUT = 0.5
KERNEL = 3


def apply_conv(x: keras.KerasTensor, filters: int, stride: int, name: str) -> keras.KerasTensor:
    """3x3 convolution (same padding) -> ReLU, layers ``<name>_conv`` and ``<name>_relu``."""
    x = keras.layers.Conv2D(filters, KERNEL, strides=stride, padding="same", name=f"{name}_conv")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def apply_dense(x: keras.KerasTensor, units: int, name: str, dropout: float = 0.0) -> keras.KerasTensor:
    """Dense -> ReLU (-> dropout), layers ``<name>_dense``, ``<name>_relu`` (, ``<name>_dropout``)."""
    x = keras.layers.Dense(units, name=f"{name}_dense")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.Dropout(dropout, name=f"{name}_dropout")(x) if dropout else x


def _dense_stack(x: keras.KerasTensor, units: tuple[int, ...], dropout_after_first: float) -> keras.KerasTensor:
    x = keras.layers.Flatten(name="fc1_flatten")(x)
    for i, width in enumerate(units, start=1):
        x = apply_dense(x, width, name=f"fc{i}", dropout=dropout_after_first if i == 1 else 0.0)
    return keras.layers.Reshape((1, 1, units[-1]), name=f"fc{len(units)}_map")(x)


def _scaled(pixels: keras.KerasTensor) -> keras.KerasTensor:
    # S4 normalised with ImageNet statistics for its pre-trained models; for these two it does not say.
    return keras.layers.Rescaling(1 / 255.0, name="preprocess_scale")(pixels)


def _baseline(pixels: keras.KerasTensor, imagenet: bool) -> keras.KerasTensor:
    x = _scaled(pixels)
    for i, filters in enumerate(BASELINE_FILTERS, start=1):
        x = apply_conv(x, filters, 1, name=f"block{i}")
    x = keras.layers.MaxPooling2D(2, name=f"block{len(BASELINE_FILTERS)}_pool")(x)
    return _dense_stack(x, BASELINE_UNITS, 0.0)


def _scratch(pixels: keras.KerasTensor, imagenet: bool) -> keras.KerasTensor:
    x = _scaled(pixels)
    for i, filters in enumerate(SCRATCH_FILTERS, start=1):
        x = apply_conv(x, filters, SCRATCH_STRIDE, name=f"block{i}")
    # Same padding: at the small sizes of tests and phantoms (32-64 px) the strided convolutions reach 1x1.
    x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{len(SCRATCH_FILTERS)}_pool")(x)
    return _dense_stack(x, SCRATCH_UNITS, SCRATCH_DROPOUT)


def _stages(convs: int, hidden: int) -> tuple[tuple[str, ...], ...]:
    return tuple((f"block{i}_",) for i in range(1, convs + 1)) + tuple((f"fc{i}_",) for i in range(1, hidden + 1))


MODELS.register("s4_baseline_cnn")(Backbone(_baseline, _stages(len(BASELINE_FILTERS), len(BASELINE_UNITS))))
MODELS.register("s4_scratch_cnn")(Backbone(_scratch, _stages(len(SCRATCH_FILTERS), len(SCRATCH_UNITS))))
