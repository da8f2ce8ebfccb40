"""Learning-rate schedules as Keras callbacks, in one registry (``--schedule NAME``).

Every factory takes the same keywords (``base_lr``, ``max_lr``, ``steps_per_epoch``, ``epochs``,
``step_size_epochs``, ``mode``, ``warmup_epochs``) and uses those it needs. Every schedule writes the
learning rate of the epoch into the logs as ``learning_rate`` (history.csv, TensorBoard), the name Keras'
TensorBoard callback and ``ReduceLROnPlateau`` use, so TensorBoard shows one learning-rate curve.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import keras

from cxr_tf.registry import Choices, Registry

SCHEDULES: Registry[Callable[..., keras.callbacks.Callback]] = Registry("schedule")
CLR_MODES = Choices("cyclic mode", ("triangular", "triangular2", "exp_range"))


def cyclic_lr(iteration: int, base_lr: float, max_lr: float, step_size: float, mode: str = "triangular",
              gamma: float = 0.99994) -> float:
    """Smith's cyclical learning rate at ``iteration`` (https://arxiv.org/abs/1506.01186, section 3.1).

    ``cycle = floor(1 + it / (2 step)); x = |it / step - 2 cycle + 1|;
    lr = base + (max - base) max(0, 1 - x) scale`` with scale 1 (triangular), ``1 / 2^(cycle-1)``
    (triangular2) or ``gamma^it`` (exp_range).
    """
    cycle = math.floor(1 + iteration / (2 * step_size))
    x = abs(iteration / step_size - 2 * cycle + 1)
    scale = {"triangular": 1.0, "triangular2": 1.0 / 2 ** (cycle - 1), "exp_range": gamma ** iteration}[mode]
    return base_lr + (max_lr - base_lr) * max(0.0, 1.0 - x) * scale


class LearningRateLogger(keras.callbacks.Callback):
    """Base: sets the optimizer's rate before each batch and logs it as ``learning_rate`` at the end of each epoch."""

    def rate(self, iteration: int, epoch: int) -> float:
        raise NotImplementedError

    iteration: int | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.iteration = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.iteration is None:
            # The optimizer's own step counter survives BackupAndRestore (restored by now, whatever the
            # callback order), so a resumed run continues the cycle. Read once: a read per batch would
            # wait for the previous step to finish.
            self.iteration = int(self.model.optimizer.iterations.numpy())
        self.model.optimizer.learning_rate.assign(self.rate(self.iteration, self.epoch))
        self.iteration += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class CyclicLR(LearningRateLogger):
    """Cyclical learning rate (Smith 2017), updated every batch.

    Args:
        base_lr, max_lr: bounds of the cycle. step_size: half-cycle in iterations (Smith: 2-10 epochs).
        mode: ``triangular``, ``triangular2`` or ``exp_range``. gamma: decay of ``exp_range`` per iteration.
    """

    def __init__(self, base_lr: float, max_lr: float, step_size: float, mode: str = "triangular",
                 gamma: float = 0.99994) -> None:
        super().__init__()
        CLR_MODES.check(mode, "mode")
        self.base_lr, self.max_lr, self.step_size, self.mode, self.gamma = base_lr, max_lr, step_size, mode, gamma

    def rate(self, iteration: int, epoch: int) -> float:
        return cyclic_lr(iteration, self.base_lr, self.max_lr, self.step_size, self.mode, self.gamma)


class CosineWithWarmup(LearningRateLogger):
    """Linear warm-up to ``max_lr`` over ``warmup_steps``, then cosine annealing to 0 at ``total_steps``."""

    def __init__(self, max_lr: float, total_steps: int, warmup_steps: int = 0) -> None:
        super().__init__()
        self.max_lr, self.total_steps, self.warmup_steps = max_lr, max(1, total_steps), warmup_steps

    def rate(self, iteration: int, epoch: int) -> float:
        if iteration < self.warmup_steps:
            return self.max_lr * (iteration + 1) / self.warmup_steps
        done = min(1.0, (iteration - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return 0.5 * self.max_lr * (1.0 + math.cos(math.pi * done))


class Constant(LearningRateLogger):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr

    def rate(self, iteration: int, epoch: int) -> float:
        return self.lr


@SCHEDULES.register("cyclic")
def cyclic(*, base_lr: float, max_lr: float, steps_per_epoch: int, step_size_epochs: float = 2.0,
           mode: str = "triangular", **_: Any) -> keras.callbacks.Callback:
    """Triangular (or triangular2 / exp_range) cyclical learning rate between ``base_lr`` and ``max_lr``."""
    return CyclicLR(base_lr, max_lr, step_size_epochs * steps_per_epoch, mode)


@SCHEDULES.register("cosine")
def cosine(*, max_lr: float, steps_per_epoch: int, epochs: int, warmup_epochs: float = 0.0,
           **_: Any) -> keras.callbacks.Callback:
    """Cosine annealing from ``max_lr`` with optional linear warm-up (the Kermany 3-class study)."""
    return CosineWithWarmup(max_lr, epochs * steps_per_epoch, int(warmup_epochs * steps_per_epoch))


@SCHEDULES.register("constant")
def constant(*, max_lr: float, **_: Any) -> keras.callbacks.Callback:
    return Constant(max_lr)


@SCHEDULES.register("plateau")
def plateau(**_: Any) -> keras.callbacks.Callback:
    """Divide the rate by 10 after 2 epochs without validation-loss improvement (Keras' ReduceLROnPlateau)."""
    return keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=2)
