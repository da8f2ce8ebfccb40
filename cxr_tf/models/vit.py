"""Vision Transformer (Dosovitskiy et al. 2021, https://arxiv.org/abs/2010.11929), patch 16, built in code.

The classic ViT: a 16x16/stride-16 convolution embeds the patches, a learned class token is prepended,
a learned position embedding is added, pre-norm encoder blocks (LayerNorm -> multi-head self-attention
-> residual, LayerNorm -> MLP with exact GELU -> residual) follow, and a final LayerNorm. The head
reads the class token: the backbone returns it as a ``[B, 1, 1, dim]`` feature map, so the zoo's
global pooling is the class token itself.

Only built-in Keras layers and ``keras.ops`` are used (the class token and position embedding are
``Embedding`` tables looked up at indices built from the input), so a saved ``.keras`` file reloads
without cxr_tf. Pixels are scaled from 0-255 to [-1, 1], as keras-hub's ViT expects.

Stages of ``--freeze-stages``: stage 1 is the embedding (``embed_*``: patches, class token,
positions); stage ``k`` (2..depth+1) is encoder block ``k-1`` (``block{k-1}_*``); the final LayerNorm
(``encoder_*``) belongs to the last stage, so freezing every stage freezes the whole backbone.
``vit_base`` has 13 stages.

Weights: from scratch (``--weights none``), an earlier ``.keras``/``.weights.h5`` file or run directory
(``--weights PATH``), or a KerasHub ``ViTBackbone`` preset of the same width, depth and patch size:
``--weights imagenet`` on ``vit_base`` is KerasHub's ``vit_base_patch16_224_imagenet`` (ViT-B/16,
ImageNet-21k then 1k, 224 px), ``--weights PRESET_DIR`` any local preset (``from_hub`` copies it layer
for layer; the layers here are KerasHub's, pre-norm, exact GELU, epsilon 1e-6).

Examples:
    >>> from cxr_tf.models import build_model
    >>> build_model("vit_tiny", num_classes=4, image_size=32, weights="none").output_shape
    (None, 4)
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from cxr_tf.errors import UserError
from cxr_tf.models.zoo import MODELS, Backbone

PATCH = 16
# ViT's initialisation of the embeddings (the reference implementation and timm: normal, stddev 0.02)
# and LayerNorm epsilon 1e-6.
EMBEDDING_INIT_STDDEV = 0.02
NORM_EPSILON = 1e-6
# The MLP's hidden width is 4x the token width in every ViT of the paper (Table 1).
MLP_RATIO = 4


def apply_embedding(x: keras.KerasTensor, dim: int, name: str = "embed") -> keras.KerasTensor:
    """Image ``[B, S, S, 3]`` -> tokens ``[B, 1 + (S/16)^2, dim]``: class token first, positions added."""
    x = keras.layers.Conv2D(dim, PATCH, strides=PATCH, name=f"{name}_patches")(x)
    patches = x.shape[1] * x.shape[2]
    x = keras.layers.Reshape((patches, dim), name=f"{name}_tokens")(x)
    init = keras.initializers.TruncatedNormal(stddev=EMBEDDING_INIT_STDDEV)
    # Index tensors derived from the input (not constants) keep the batch dimension symbolic, so the
    # learned vectors live in built-in Embedding layers instead of a custom layer's weights.
    zeros = ops.zeros_like(x[:, :, 0], dtype="int32")                       # [B, N]
    class_token = keras.layers.Embedding(1, dim, embeddings_initializer=init,
                                         name=f"{name}_class_token")(zeros[:, :1])
    x = keras.layers.Concatenate(axis=1, name=f"{name}_with_class_token")([class_token, x])
    positions = ops.cumsum(ops.ones_like(x[:, :, 0], dtype="int32"), axis=1) - 1  # [B, N+1]: 0..N
    position_embedding = keras.layers.Embedding(patches + 1, dim, embeddings_initializer=init,
                                                name=f"{name}_position")(positions)
    return keras.layers.Add(name=f"{name}_add_position")([x, position_embedding])


def apply_encoder_block(x: keras.KerasTensor, heads: int, name: str) -> keras.KerasTensor:
    """One pre-norm transformer block on ``[B, T, dim]``; layers named ``<name>_norm1`` ... ``<name>_add2``."""
    dim = x.shape[-1]
    y = keras.layers.LayerNormalization(epsilon=NORM_EPSILON, name=f"{name}_norm1")(x)
    y = keras.layers.MultiHeadAttention(heads, key_dim=dim // heads, name=f"{name}_attention")(y, y)
    x = keras.layers.Add(name=f"{name}_add1")([x, y])
    y = keras.layers.LayerNormalization(epsilon=NORM_EPSILON, name=f"{name}_norm2")(x)
    y = keras.layers.Dense(MLP_RATIO * dim, activation="gelu", name=f"{name}_mlp1")(y)
    y = keras.layers.Dense(dim, name=f"{name}_mlp2")(y)
    return keras.layers.Add(name=f"{name}_add2")([x, y])


# Our layer -> KerasHub ViTBackbone weight paths (``{i}`` the block, 1-based in both).
HUB_EMBEDDING = {"embed_patches": ["vit_patching_and_embedding/patch_embedding/kernel",
                                   "vit_patching_and_embedding/patch_embedding/bias"],
                 "embed_class_token": ["vit_patching_and_embedding/class_token"],
                 "embed_position": ["vit_patching_and_embedding/position_embedding/embeddings"],
                 "encoder_norm": ["vit_encoder/ln/gamma", "vit_encoder/ln/beta"]}
HUB_BLOCK = {"norm1": ["ln_1/gamma", "ln_1/beta"], "norm2": ["ln_2/gamma", "ln_2/beta"],
             "attention": [f"mha/{part}/{w}" for part in ("query", "key", "value", "attention_output")
                           for w in ("kernel", "bias")],
             "mlp1": ["mlp/dense_1/kernel", "mlp/dense_1/bias"], "mlp2": ["mlp/dense_2/kernel", "mlp/dense_2/bias"]}


def from_hub(model: keras.Model, weights: dict[str, np.ndarray]) -> list[str]:
    """Copy a KerasHub ``ViTBackbone``'s weights (``{path: array}``) into ``model``'s ``embed_``/``block``/``encoder_``
    layers; returns the paths left unused. A missing weight raises ``KeyError``, a misshapen one ``ValueError``
    (another width, depth, or a position table for another image size).
    """
    used = set()
    for layer in model.layers:
        if not layer.weights or layer.name.startswith(("head_", "preprocess_")):
            continue
        if layer.name in HUB_EMBEDDING:
            paths = HUB_EMBEDDING[layer.name]
        else:
            block, part = layer.name.split("_", 1)
            paths = [f"vit_encoder/transformer_block_{block[5:]}/{p}" for p in HUB_BLOCK[part]]
        values = [weights[path] for path in paths]
        if layer.name == "embed_class_token":
            values = [values[0].reshape(1, -1)]  # KerasHub [1, 1, dim] -> an Embedding table [1, dim]
        layer.set_weights(values)
        used.update(paths)
    return sorted(set(weights) - used)


def backbone(dim: int, depth: int, heads: int, preset: str = "") -> Backbone:
    """A ViT with patch 16 as a zoo ``Backbone``.

    Args:
        dim: token width (192 tiny, 384 small, 768 base). depth: encoder blocks. heads: attention heads
            (``dim`` must be a multiple). preset: the KerasHub preset of its ImageNet weights, if any.

    Returns:
        ``Backbone`` whose build maps float32 ``[B, S, S, 3]`` in 0-255 (``S`` a multiple of 16) to the
        class token ``[B, 1, 1, dim]``; ``1 + depth`` stages (see the module docstring).
    """
    if dim % heads:
        raise ValueError(f"ViT width {dim} is not a multiple of heads={heads}")

    def build(pixels: keras.KerasTensor, imagenet: bool) -> keras.KerasTensor:
        side = pixels.shape[1]
        if side % PATCH:
            raise UserError(f"--image-size {side}: a ViT needs a multiple of its patch size {PATCH} "
                            f"(e.g. {max(PATCH, side // PATCH * PATCH)} or 224)")
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess_scale")(pixels)
        x = apply_embedding(x, dim)
        for block in range(1, depth + 1):
            x = apply_encoder_block(x, heads, name=f"block{block}")
        x = keras.layers.LayerNormalization(epsilon=NORM_EPSILON, name="encoder_norm")(x)
        x = keras.layers.Cropping1D((0, x.shape[1] - 1), name="encoder_class_token")(x)
        return keras.layers.Reshape((1, 1, dim), name="encoder_class_token_map")(x)

    blocks = [(f"block{i}_",) for i in range(1, depth + 1)]
    blocks[-1] += ("encoder_",)
    return Backbone(build, (("embed_",), *blocks), preset=preset, from_hub=from_hub)


# Table 1 of the paper (Base) and DeiT (Touvron et al. 2021, https://arxiv.org/abs/2012.12877: Tiny, Small).
MODELS.register("vit_tiny")(backbone(dim=192, depth=12, heads=3))
MODELS.register("vit_small")(backbone(dim=384, depth=12, heads=6))
MODELS.register("vit_base")(backbone(dim=768, depth=12, heads=12, preset="vit_base_patch16_224_imagenet"))
