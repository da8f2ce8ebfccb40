"""Per-step time of cxr_tf's fit / bare ``model.fit`` on in-memory tensors, same model and batch; one run prints all.

    python benchmarks/fit_overhead.py [--model cnn5] [--size 64] [--batch 32] [--steps 8] [--epochs 3] [--rounds 2]

Three ways to train the same zoo model (same loss, optimizer, batch and steps per epoch) on NIH-style phantom
records built in a temporary directory:
  * bare: ``model.fit`` on the same images, decoded and resized once into in-memory tensors, batched once
    and repeated (the floor: NumPy arrays passed as ``model.fit(x, y)`` measured 10% slower per step at 64 px
    and 40% at 128 px, as Keras slices and shuffles them every epoch); compiled with the loss only; no
    callbacks; validation on in-memory tensors of the val split;
  * records: the same model fed by fit's tf.data datasets (decode, resize; one gray channel, the model makes
    its enhancement channels in both variants) instead;
  * cxr_tf fit: fit's own set-up, compilation (per-class AUC metrics) and every callback of a fit run
    (cyclical LR per batch, mean AUC, best-model checkpoint, resumable backup, timing, CSV, TensorBoard,
    input images), i.e. ``training.fit.prepare`` + ``compile_phase`` + ``phase_callbacks``.
Train step time = (end of the epoch's last batch - start of the epoch) / steps; epoch end = validation plus
every callback's work at the end of the epoch (checkpoints, logs), reported apart because it does not grow
with the epoch's length. Every fit call's first epoch is warm-up (tracing, iterator start) and not counted;
the variants take turns, round by round, so a load spike from other processes hits all of them alike.
Goal: cxr_tf fit / bare <= 1.05 per train step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLASSES = ["Cardiomegaly", "Effusion", "Edema"]  # what a small CNN learns from phantoms (tests/conftest.py)


def build_phantom_records(root: Path, n: int, size: int) -> Path:
    """``n`` synthetic NIH-style phantoms at ``size`` px, as records split by patient."""
    from cxr_tf import build_records, cli, synth

    assert cli.run(synth.main, ["--out", str(root / "ph"), "--n", str(n), "--size", str(size),
                                "--difficulty", "0.3", "--workers", "1"]) == 0
    assert cli.run(build_records.main, ["--dataset", "nih", "--labels", str(root / "ph" / "Data_Entry_2017.csv"),
                                        "--images", str(root / "ph"), "--image-size", str(size), "--workers", "1",
                                        "--out", str(root / "records")]) == 0
    return root / "records"


def arrays(dataset, examples: int | None = None):
    """(images, labels, weights) NumPy arrays of the first ``examples`` (default all) of a batched dataset."""
    import numpy as np

    rows = dataset.unbatch()
    if examples is not None:
        rows = rows.take(examples)
    x, y, w = zip(*((a.numpy(), b.numpy(), c.numpy()) for a, b, c in rows))
    return np.stack(x), np.stack(y), np.stack(w)


def make_clock(steps: int):
    import keras

    class Clock(keras.callbacks.Callback):
        """Per epoch: seconds of the train steps, and of what follows them (validation, epoch-end callbacks).

        Listed last, so its ``on_epoch_end`` runs after every other callback's.
        """

        def __init__(self) -> None:
            super().__init__()
            self.train: list[float] = []
            self.end: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if batch == steps - 1:
                float(logs["loss"])  # the step's result is ready, not merely dispatched
                self.last_batch = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.train.append(self.last_batch - self.start)
            self.end.append(time.perf_counter() - self.last_batch)

    return Clock()


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.3f} [{min(values):.3f}-{max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn5")
    parser.add_argument("--size", type=int, default=64, help="image side, pixels (records and model)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--n", type=int, default=256, help="phantoms (split ~70/10/20 train/val/test)")
    parser.add_argument("--steps", type=int, default=8, help="train steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit call; the first is warm-up")
    parser.add_argument("--rounds", type=int, default=2, help="fit calls per variant, taken in turns")
    parser.add_argument("--augment", action="store_true", help="cxr_tf: random warp and photometric jitter")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from cxr_tf.training import fit
    from cxr_tf.training.fit_config import FitConfig
    from cxr_tf.training.optimizers import OPTIMIZERS

    with tempfile.TemporaryDirectory() as tmp:
        records = build_phantom_records(Path(tmp), args.n, args.size)
        cfg = FitConfig(records=str(records), model=args.model, weights="none", classes=CLASSES,
                        image_size=args.size, enhance=True, augment=args.augment, batch_size=args.batch,
                        lr=3e-3, base_lr=3e-4, step_size_epochs=1, steps_per_epoch=args.steps,
                        epochs=args.epochs * args.rounds, out=str(Path(tmp) / "run"))
        setup = fit.prepare(cfg)
        run = Path(cfg.out)
        run.mkdir()
        fit.compile_phase(setup, cfg, cfg.lr, trainable_backbone=True)
        inputs = next(iter(setup.val_ds.take(1)))[0][:3]
        in_memory = tf.data.Dataset.from_tensor_slices(arrays(setup.train_ds, args.steps * setup.global_batch))
        in_memory = in_memory.batch(setup.global_batch).cache().repeat().prefetch(tf.data.AUTOTUNE)
        validation = tf.data.Dataset.from_tensor_slices(arrays(setup.val_ds)).batch(setup.global_batch).cache()

        def plain(model):
            model.compile(optimizer=OPTIMIZERS.get(cfg.optimizer)(learning_rate=cfg.lr), loss=setup.loss)
            return model

        bare, fed = plain(keras.models.clone_model(setup.model)), plain(keras.models.clone_model(setup.model))
        clocks = {name: make_clock(args.steps) for name in ("bare", "records", "cxr_tf fit")}
        callbacks = fit.phase_callbacks(setup, cfg, run, "train", cfg.lr, cfg.epochs, inputs)
        variants = {
            "bare": lambda first, last: bare.fit(
                in_memory, validation_data=validation, steps_per_epoch=args.steps, initial_epoch=first,
                epochs=last, callbacks=[clocks["bare"]], shuffle=False, verbose=0),
            "records": lambda first, last: fed.fit(
                setup.train_ds, validation_data=setup.val_ds, steps_per_epoch=args.steps, initial_epoch=first,
                epochs=last, callbacks=[clocks["records"]], shuffle=False, verbose=0),
            "cxr_tf fit": lambda first, last: setup.model.fit(
                setup.train_ds, validation_data=setup.val_ds, steps_per_epoch=args.steps, initial_epoch=first,
                epochs=last, callbacks=[*callbacks, clocks["cxr_tf fit"]], shuffle=False, verbose=0),
        }
        order = list(variants)
        warm_up: set[int] = set()
        for r in range(args.rounds):
            first = r * args.epochs
            warm_up.add(first)
            for name in (order if r % 2 == 0 else order[::-1]):
                variants[name](first, first + args.epochs)
    counted = [i for i in range(args.epochs * args.rounds) if i not in warm_up]
    per_step = {name: [clock.train[i] / args.steps for i in counted] for name, clock in clocks.items()}
    epoch_end = {name: [clock.end[i] for i in counted] for name, clock in clocks.items()}
    print(f"{args.model}, {args.size} px, batch {setup.global_batch}, {args.steps} steps/epoch, "
          f"{len(counted)} epochs counted per variant, augment={args.augment}; load {os.getloadavg()[0]:.1f}")
    print(f"{'':12s} {'s/step median [min-max]':>28s} {'epoch end s (val + callbacks)':>32s}")
    for name in variants:
        print(f"{name:12s} {summary(per_step[name]):>28s} {summary(epoch_end[name]):>32s}")
    # cxr_tf fit / records isolates what fit's metrics and callbacks add to the records pipeline.
    for name, base in (("records", "bare"), ("cxr_tf fit", "bare"), ("cxr_tf fit", "records")):
        ratios = [a / b for a, b in zip(per_step[name], per_step[base])]
        goal = "  (goal <= 1.05)" if (name, base) == ("cxr_tf fit", "bare") else ""
        print(f"{name + ' / ' + base:22s} per step {summary(ratios)}{goal}")


if __name__ == "__main__":
    main()
