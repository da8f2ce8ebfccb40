"""Learning-rate range test: the library behind ``python -m cxr_tf.lr_find``.

The rate rises geometrically from ``min_lr`` to ``max_lr``, one value per training batch, while each
batch's loss is recorded; the curve of loss against rate shows where training starts to learn, where it
learns fastest and where it diverges (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017,
https://arxiv.org/abs/1506.01186, section 3.3; the exponential sweep, smoothing and stop rule are
fastai's ``lr_find``, https://docs.fast.ai/callback.schedule.html#learner.lr_find). The model, data,
loss and optimizer are exactly those ``python -m cxr_tf.fit`` would train with the same flags; the
test changes the weights, so they are never saved.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from cxr_tf import reporting
from cxr_tf.errors import UserError
from cxr_tf.training import fit
from cxr_tf.training.fit_config import FitConfig

log = reporting.logger("lr_find")


def geometric_rates(min_lr: float, max_lr: float, steps: int) -> np.ndarray:
    """float64 ``[steps]``: ``min_lr * (max_lr / min_lr) ** (i / (steps - 1))``, from ``min_lr`` to ``max_lr``."""
    return min_lr * (max_lr / min_lr) ** (np.arange(steps) / (steps - 1))


class RangeTestCallback(keras.callbacks.Callback):
    """Sets batch ``i``'s learning rate to ``rates[i]`` and records its loss; stops the fit on divergence.

    The smoothed loss is fastai's bias-corrected exponential moving average,
    ``avg = smooth avg + (1 - smooth) loss; smoothed = avg / (1 - smooth^(i+1))``; training stops once it
    exceeds ``stop_factor`` times its lowest value so far, or once the loss is not finite.
    """

    def __init__(self, rates: np.ndarray, smooth: float, stop_factor: float) -> None:
        super().__init__()
        self.rates, self.smooth, self.stop_factor = rates, smooth, stop_factor
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.average, self.best = 0.0, math.inf

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # Keras logs the epoch's running mean; cleared before every batch, the logged loss is this batch's.
        self.model.reset_metrics()
        self.model.optimizer.learning_rate.assign(self.rates[len(self.losses)])

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float((logs or {})["loss"])
        self.average = self.smooth * self.average + (1.0 - self.smooth) * loss
        smoothed = self.average / (1.0 - self.smooth ** (len(self.losses) + 1))
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        self.best = min(self.best, smoothed)
        if not math.isfinite(smoothed) or smoothed > self.stop_factor * self.best:
            self.model.stop_training = True


@dataclass(frozen=True)
class RangeTest:
    """The recorded curve: one entry per batch trained, ``N <= steps`` (fewer when the loss diverged)."""

    rates: np.ndarray     # float64 [N], geometric from min_lr
    losses: np.ndarray    # float64 [N], each batch's training loss
    smoothed: np.ndarray  # float64 [N], bias-corrected exponential moving average of the losses
    steps: int            # batches planned

    @property
    def diverged(self) -> bool:
        return len(self.rates) < self.steps


@dataclass(frozen=True)
class Suggestion:
    """Learning rates read off a range test (all within the tested range)."""

    steepest: float  # where the smoothed loss falls fastest per decade of rate
    minimum: float   # where the smoothed loss is lowest
    lr: float        # suggested --lr: the maximum of a cyclical schedule
    base_lr: float   # suggested --base-lr: its minimum


def check_options(min_lr: float, max_lr: float) -> None:
    """Raises ``UserError`` unless ``min_lr < max_lr`` (each flag's own range is checked with the config)."""
    if not min_lr < max_lr:
        raise UserError(f"--min-lr {min_lr} and --max-lr {max_lr}: need min-lr < max-lr")


def range_test(cfg: FitConfig, *, min_lr: float = 1e-7, max_lr: float = 1.0, steps: int = 100,
               smooth: float = 0.98, stop_factor: float = 4.0) -> RangeTest:
    """Train ``cfg``'s model for up to ``steps`` batches at rates rising from ``min_lr`` to ``max_lr``.

    Data, model, loss, optimizer and freezing are ``fit``'s for ``cfg`` (with ``--freeze backbone`` the
    backbone is frozen, as in fit's first phase, whose ``--lr`` this test is for); ``cfg``'s schedule,
    epochs and validation settings play no part. Stops early once the smoothed loss exceeds
    ``stop_factor`` times its best.
    """
    check_options(min_lr, max_lr)
    setup = fit.prepare(cfg)
    fit.compile_phase(setup, cfg, min_lr, trainable_backbone=cfg.freeze != "backbone")
    rates = geometric_rates(min_lr, max_lr, steps)
    recorder = RangeTestCallback(rates, smooth, stop_factor)
    setup.model.fit(setup.train_ds, epochs=1, steps_per_epoch=steps, callbacks=[recorder], shuffle=False,
                    verbose=0)  # the records pipeline shuffles
    done = len(recorder.losses)
    if done < steps:
        log.info("loss diverged at lr %.3g after %d of %d steps; stopped", rates[done - 1], done, steps)
    return RangeTest(rates[:done], np.asarray(recorder.losses), np.asarray(recorder.smoothed), steps)


def suggest(test: RangeTest) -> Suggestion:
    """Rates read off the smoothed curve.

    * ``minimum``: the rate of the lowest smoothed loss; ``steepest``: the rate of the most negative slope
      of the smoothed loss against log(rate) (fastai's "steep" point), searched up to the minimum and, as
      fastai does, not in the first tenth of the steps, where the average of a few batches is mostly noise.
    * ``lr`` (the cyclical maximum) = ``minimum / 10``: at the minimum the loss is about to diverge, and a
      tenth of it is fastai's rule of thumb for the largest rate that still trains stably; Smith (2017,
      section 3.3) places ``max_lr`` where the loss stops falling and becomes ragged, which is the same
      region. ``base_lr`` = ``lr / 4``: Smith's alternative bound, "set base_lr to 1/3 or 1/4 of max_lr".
      Both are clipped to the tested range.
    """
    finite = np.where(np.isfinite(test.smoothed), test.smoothed, np.inf)
    lowest = int(np.argmin(finite))
    start = min(test.steps // 10, lowest)
    steepest = lowest
    if lowest - start >= 1:
        slope = np.gradient(finite[start:lowest + 1], np.log(test.rates[start:lowest + 1]))
        steepest = start + int(np.argmin(slope))
    low = float(test.rates[0])
    lr = max(float(test.rates[lowest]) / 10, low)
    return Suggestion(steepest=float(test.rates[steepest]), minimum=float(test.rates[lowest]), lr=lr,
                      base_lr=max(lr / 4, low))


def write_csv(test: RangeTest, path: Path) -> None:
    """``step,lr,loss,smoothed_loss``, one row per batch trained."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "lr", "loss", "smoothed_loss"])
        for step, row in enumerate(zip(test.rates, test.losses, test.smoothed)):
            writer.writerow([step, *(f"{value:.6g}" for value in row)])


def plot(test: RangeTest, suggestion: Suggestion, path: Path, title: str = "") -> None:
    """Loss (raw, faint, and smoothed) against the learning rate on a log axis, suggested rates marked, as PNG."""
    # The object-oriented API renders with Agg and leaves pyplot's global state (and backend) alone.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(test.rates, test.losses, color="0.75", linewidth=1, label="loss")
    axes.plot(test.rates, test.smoothed, color="C0", linewidth=2, label="smoothed loss")
    marks = (("steepest", suggestion.steepest, "C2", ":"), ("minimum", suggestion.minimum, "C3", ":"),
             ("--lr", suggestion.lr, "C1", "--"), ("--base-lr", suggestion.base_lr, "C4", "--"))
    for name, rate, color, style in marks:
        axes.axvline(rate, color=color, linestyle=style, label=f"{name} {rate:.2g}")
    finite = test.smoothed[np.isfinite(test.smoothed)]
    if finite.size and finite[0] > finite.min():
        # Divergence would squash the informative part of the curve; show losses up to 1.5x the first.
        low, high = float(min(finite.min(), np.nanmin(test.losses))), 1.5 * float(finite[0])
        axes.set_ylim(low - 0.05 * (high - low), high)
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    axes.set_title(title or "learning-rate range test")
    axes.legend(fontsize="small")
    figure.savefig(path, dpi=100)
