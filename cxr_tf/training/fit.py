"""Train a model on records: the library behind ``python -m cxr_tf.fit``.

One call, one run directory (``runs/<name>/``):

* ``config.toml`` (the resolved ``FitConfig``), ``dataset.json`` (copy of the records'), ``params.json``
  (total and trainable parameters per phase), ``history.csv`` (one row per epoch, both phases),
  ``timing.json`` (seconds and images/s per epoch), ``tb/`` (TensorBoard: losses, per-class AUC,
  learning rate, input channels), ``best.keras`` (best validation mean AUC, or accuracy for
  single-label tasks), ``backup/`` (Keras ``BackupAndRestore``: a killed run re-run with the same
  arguments resumes from its last finished epoch).
* Two-phase training (``--freeze backbone``): the head is trained on a frozen backbone (BatchNorm in
  inference mode) for ``epochs``, then everything is fine-tuned for ``fine_tune_epochs`` at
  ``fine_tune_lr``, in one continuous log. A finished first phase is marked by ``phase1.weights.h5``
  so a run killed in the second phase does not train the first again.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxr_tf import config as config_lib
from cxr_tf import reporting
from cxr_tf.errors import UserError
from cxr_tf.training import strategy as strategy_lib
from cxr_tf.training.fit_config import FitConfig

log = reporting.logger("fit")

PHASE1_WEIGHTS = "phase1.weights.h5"


@dataclass(frozen=True)
class Task:
    """What the records and the label policy make of the prediction problem."""

    classes: list[str]
    head: str      # multilabel | multiclass | multilabel3
    monitor: str   # val_mean_auc | val_accuracy


def resolve_task(info: dict[str, Any], cfg: FitConfig) -> Task:
    """Head and monitored metric for the records' task under ``cfg``'s label policy."""
    classes = list(cfg.classes or info["classes"])
    unknown = [c for c in classes if c not in info["classes"]]
    if unknown:
        raise UserError(f"--classes: unknown class(es) {unknown}; the records have {', '.join(info['classes'])}")
    if info["task"] == "multiclass":
        return Task(classes, "multiclass", "val_accuracy")
    return Task(classes, "multilabel3" if cfg.uncertainty == "multiclass" else "multilabel", "val_mean_auc")


def run_dir(cfg: FitConfig) -> Path:
    """The run directory; refuses one that holds a run with other settings (resuming needs the same)."""
    run = Path(cfg.out or f"runs/{cfg.model}")
    saved = run / "config.toml"
    if saved.exists():
        # Placement flags do not change what is learnt; anything else must match to resume.
        placement = {"strategy", "devices", "out"}
        before = {k: v for k, v in config_lib.load_toml(saved).items() if k not in placement}
        now = {k: v for k, v in config_lib.to_dict(cfg).items() if k not in placement}
        if before != now:
            changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            raise UserError(f"--out {run} holds a run with other settings ({', '.join(changed)}); "
                            "re-run with the same settings to resume, or choose another --out")
    run.mkdir(parents=True, exist_ok=True)
    return run


def train(cfg: FitConfig) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.records`` into the run directory; returns a summary.

    Returns:
        ``{"run": str, "monitor": str, "best": float | None, "epochs": int, "params": {...}}``.
    """
    strategy_lib.configure_devices(cfg.devices)
    import keras
    import tensorflow as tf

    from cxr_tf.models import build_model, freeze
    from cxr_tf.pipeline import make_dataset
    from cxr_tf.pipeline.counts import label_counts
    from cxr_tf.records import info as records_info
    from cxr_tf.training import callbacks as cb
    from cxr_tf.training import metrics as metric_lib
    from cxr_tf.training.losses import LOSSES
    from cxr_tf.training.optimizers import OPTIMIZERS
    from cxr_tf.training.schedules import SCHEDULES

    info = records_info.load(cfg.records)
    task = resolve_task(info, cfg)
    run = run_dir(cfg)
    (run / "config.toml").write_text(config_lib.to_toml(cfg))
    (run / "dataset.json").write_text(json.dumps(info, indent=2))
    strategy_lib.set_mixed_precision(cfg.mixed_precision)
    keras.utils.set_random_seed(cfg.seed)

    dist = strategy_lib.make_strategy(cfg.strategy)
    global_batch = cfg.batch_size * dist.num_replicas_in_sync
    policy = dict(classes=task.classes, uncertainty=cfg.uncertainty, blank=cfg.blank,
                  propagate_parents=cfg.propagate_parents)
    data = dict(policy, image_size=cfg.image_size, channels=cfg.input_channels, batch_size=global_batch,
                seed=cfg.seed, cache=cfg.cache)
    steps = cfg.steps_per_epoch or max(1, -(-info["splits"]["train"]["examples"] // global_batch))
    train_ds = make_dataset(cfg.records, "train", augment=cfg.augment, noise=cfg.noise or None,
                            balance=cfg.balance, **data).repeat()
    val_ds = make_dataset(cfg.records, "val", **data)
    positives, negatives = label_counts(cfg.records, "train", **policy)
    channels = 1 if cfg.input_channels == "gray1" else 3

    with dist.scope():
        model = build_model(cfg.model, num_classes=len(task.classes), head=task.head, image_size=cfg.image_size,
                            channels=channels, weights=cfg.weights, dropout=cfg.dropout,
                            freeze_stages=cfg.freeze_stages)
        loss = LOSSES.get(cfg.loss)(positives=positives, negatives=negatives, class_weights=cfg.class_weights)

    history_csv = run / "history.csv"
    inputs = next(iter(val_ds.take(1)))[0][:3]
    # Kept across resumes: a run resumed in phase 2 still reports phase 1's parameters.
    params_json = run / "params.json"
    params: dict[str, dict[str, int]] = json.loads(params_json.read_text()) if params_json.exists() else {}

    def phase(name: str, epochs: tuple[int, int], lr: float, trainable_backbone: bool) -> None:
        with dist.scope():
            if not trainable_backbone:
                freeze.freeze_backbone(model)
            else:
                freeze.unfreeze(model, keep_frozen_stages=cfg.freeze_stages)
            optimizer = OPTIMIZERS.get(cfg.optimizer)(learning_rate=lr, weight_decay=cfg.weight_decay,
                                                      momentum=cfg.momentum, nesterov=cfg.nesterov,
                                                      clipnorm=cfg.clipnorm)
            metrics = metric_lib.class_aucs(task.classes, task.head)
            if task.head == "multiclass":
                metrics.append(keras.metrics.CategoricalAccuracy(name="accuracy"))
            model.compile(optimizer=optimizer, loss=loss, weighted_metrics=metrics, jit_compile=cfg.jit_compile)
        params[name] = {"total": int(model.count_params()),
                        "trainable": int(sum(int(tf.size(w)) for w in model.trainable_weights))}
        params_json.write_text(json.dumps(params, indent=2))
        schedule = SCHEDULES.get(cfg.schedule)(base_lr=min(cfg.base_lr, lr), max_lr=lr, steps_per_epoch=steps,
                                               epochs=epochs[1], step_size_epochs=cfg.step_size_epochs,
                                               mode=cfg.clr_mode, warmup_epochs=cfg.warmup_epochs)
        callbacks = [
            metric_lib.MeanAUC(task.classes),  # first: the callbacks after it read val_mean_auc
            schedule,
            cb.BestModel(run / "best.keras", history_csv, task.monitor, "max"),
            # Before the logs: an epoch reaches history.csv only once the model and its backup are saved.
            cb.ResumableBackup(run / "backup" / name),
            cb.EpochTiming(run / "timing.json", steps * global_batch),
            keras.callbacks.CSVLogger(str(history_csv), append=True),
            keras.callbacks.TensorBoard(str(run / "tb"), update_freq="epoch"),
            cb.InputImages(run / "tb", inputs),
        ]
        if cfg.patience:
            callbacks.append(keras.callbacks.EarlyStopping(task.monitor, mode="max", patience=cfg.patience))
        model.fit(train_ds, validation_data=val_ds, epochs=epochs[1], initial_epoch=epochs[0],
                  steps_per_epoch=steps, validation_steps=cfg.validation_steps, callbacks=callbacks, verbose=2)

    two_phase = cfg.freeze == "backbone"
    phase1 = run / PHASE1_WEIGHTS
    if two_phase and phase1.exists():
        model.load_weights(str(phase1))
        log.info("phase 1 (frozen backbone) finished earlier; fine-tuning")
    else:
        phase("phase1" if two_phase else "train", (0, cfg.epochs), cfg.lr, trainable_backbone=not two_phase)
        if two_phase:
            model.save_weights(str(phase1))
    if two_phase and cfg.fine_tune_epochs:
        phase("phase2", (cfg.epochs, cfg.epochs + cfg.fine_tune_epochs), cfg.fine_tune_lr, trainable_backbone=True)
    shutil.rmtree(run / "backup", ignore_errors=True)
    best = cb.best_so_far(history_csv, task.monitor, "max")
    return {"run": str(run), "monitor": task.monitor, "best": best, "params": params,
            "epochs": cfg.epochs + (cfg.fine_tune_epochs if two_phase else 0)}
