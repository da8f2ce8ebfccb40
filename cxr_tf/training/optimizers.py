"""Optimizers of the source studies in one registry (``--optimizer NAME``).

Every factory takes the same keywords (``learning_rate``, ``weight_decay``, ``momentum``, ``nesterov``,
``clipnorm``) and uses those it needs, so ``fit`` builds any of them in one call.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

from cxr_tf.registry import Registry

OPTIMIZERS: Registry[Callable[..., keras.optimizers.Optimizer]] = Registry("optimizer")


def _common(clipnorm: float | None) -> dict[str, Any]:
    return {} if clipnorm is None else {"clipnorm": clipnorm}


@OPTIMIZERS.register("adam")
def adam(*, learning_rate: float, clipnorm: float | None = None, **_: Any) -> keras.optimizers.Optimizer:
    """Adam (Kingma & Ba 2015): the thesis, the ViT and Kermany studies."""
    return keras.optimizers.Adam(learning_rate, **_common(clipnorm))


@OPTIMIZERS.register("adamw")
def adamw(*, learning_rate: float, weight_decay: float = 0.0, clipnorm: float | None = None,
          **_: Any) -> keras.optimizers.Optimizer:
    """AdamW, decoupled weight decay (Loshchilov & Hutter 2019): the Kermany 3-class study's best, 5e-4."""
    return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay, **_common(clipnorm))


@OPTIMIZERS.register("sgd")
def sgd(*, learning_rate: float, momentum: float = 0.9, nesterov: bool = False, clipnorm: float | None = None,
        **_: Any) -> keras.optimizers.Optimizer:
    """SGD with (Nesterov) momentum."""
    return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=nesterov, **_common(clipnorm))


@OPTIMIZERS.register("adagrad")
def adagrad(*, learning_rate: float, clipnorm: float | None = None, **_: Any) -> keras.optimizers.Optimizer:
    """AdaGrad: the NIH study's ResNet-152 (lr 1e-3)."""
    return keras.optimizers.Adagrad(learning_rate, **_common(clipnorm))
