"""The optimizer registry: one call builds any optimizer, and each keyword reaches the update it controls."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cxr_tf.training.optimizers import OPTIMIZERS

# What fit passes to every optimizer factory.
UNIFORM = dict(learning_rate=0.1, weight_decay=0.01, momentum=0.5, nesterov=True, clipnorm=1.0)


def steps(optimizer: keras.optimizers.Optimizer, start: list[float], gradient: list[float], n: int) -> np.ndarray:
    """The variable after ``n`` updates with a fixed gradient."""
    variable = keras.Variable(np.array(start, np.float32))
    for _ in range(n):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.array(gradient, np.float32)), variable)])
    return keras.ops.convert_to_numpy(variable)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_builds_from_the_uniform_keywords_with_its_learning_rate_and_clipping(name):
    optimizer = OPTIMIZERS.get(name)(**UNIFORM)
    assert isinstance(optimizer, keras.optimizers.Optimizer)
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.1)
    assert optimizer.clipnorm == 1.0


def test_optimizers_without_clipnorm_do_not_clip():
    assert OPTIMIZERS.get("adam")(learning_rate=0.1).clipnorm is None


@pytest.mark.parametrize("name, after", [("adamw", 1.0 - 0.1 * 0.01), ("adam", 1.0)])
def test_adamw_applies_decoupled_weight_decay_and_adam_none(name, after):
    # A zero gradient leaves Adam's moments at 0, so the only change is AdamW's w -= lr * wd * w.
    optimizer = OPTIMIZERS.get(name)(**{**UNIFORM, "clipnorm": None})
    np.testing.assert_allclose(steps(optimizer, [1.0], [0.0], 1), [after], rtol=1e-6)


@pytest.mark.parametrize("nesterov, after", [
    # v = 0.5 v - 0.1 g; w += v: v = -0.1, -0.15 -> w = 0.9, 0.75.
    (False, 0.75),
    # w += 0.5 v - 0.1 g with the new v: 1 - 0.05 - 0.1 = 0.85, then 0.85 - 0.075 - 0.1 = 0.675.
    (True, 0.675),
])
def test_momentum_and_nesterov_reach_sgd(nesterov, after):
    optimizer = OPTIMIZERS.get("sgd")(**{**UNIFORM, "nesterov": nesterov, "clipnorm": None})
    assert optimizer.momentum == 0.5 and optimizer.nesterov is nesterov
    np.testing.assert_allclose(steps(optimizer, [1.0], [1.0], 2), [after], rtol=1e-6)


def test_clipnorm_scales_a_long_gradient_to_the_given_norm():
    # Gradient (3, 4) has norm 5; clipped to norm 1 it is (0.6, 0.8), and plain SGD at lr 1 subtracts it.
    optimizer = OPTIMIZERS.get("sgd")(learning_rate=1.0, momentum=0.0, clipnorm=1.0)
    np.testing.assert_allclose(steps(optimizer, [0.0, 0.0], [3.0, 4.0], 1), [-0.6, -0.8], rtol=1e-6)
