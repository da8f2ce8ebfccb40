"""Train a model on records: the library behind ``python -m cxr_tf.fit``.

One call, one run directory (``runs/<name>/``):

* ``config.toml`` (the resolved ``FitConfig``), ``dataset.json`` (copy of the records'), ``params.json``
  (total and trainable parameters per phase), ``history.csv`` (one row per epoch, both phases),
  ``timing.json`` (seconds and images/s per epoch), ``tb/`` (TensorBoard: losses, per-class AUC,
  learning rate, per-batch loss and learning rate, hyper-parameters, input channels; see
  ``training/tensorboard.py``), ``best.keras`` (best validation mean AUC, or accuracy for
  single-label tasks), ``backup/`` (Keras ``BackupAndRestore``: a killed run re-run with the same
  arguments resumes from its last finished epoch), ``summary.json`` (written last: the run is finished;
  re-running its command returns this summary and trains nothing).
* Two-phase training (``--freeze backbone``): the head is trained on a frozen backbone (BatchNorm in
  inference mode) for ``epochs``, then everything is fine-tuned for ``fine_tune_epochs`` at
  ``fine_tune_lr``, in one continuous log. A finished first phase is marked by ``phase1.weights.h5``
  so a run killed in the second phase does not train the first again.
* Multi-worker (``--strategy multiworker``, the same command on every worker): only the chief writes the
  run directory; the other workers write the same files to a scratch directory, removed at the end, and
  resume from the chief's backup (so resuming needs the run directory on storage every worker reads).

``prepare`` (devices, strategy, datasets, model, loss), ``compile_phase`` and ``phase_callbacks`` are the
pieces of ``train``; ``python -m cxr_tf.lr_find`` and ``benchmarks/fit_overhead.py`` reuse them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxr_tf import config as config_lib
from cxr_tf import reporting
from cxr_tf.errors import UserError
from cxr_tf.io import claims
from cxr_tf.records.info import RecordsInfo
from cxr_tf.training import strategy as strategy_lib
from cxr_tf.training.fit_config import FitConfig
from cxr_tf.training.runs import SUMMARY_FILE, RunSummary

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf

    from cxr_tf.models.heads import Head

log = reporting.logger("fit")

PHASE1_WEIGHTS = "phase1.weights.h5"
PARAMS = "params.json"
# A run directory is the run's whose config.toml it holds. Placement, feedback and --verify do not change
# what is learnt; anything else must match to resume.
OWNER = claims.Owner(command="fit", config_file="config.toml", adopt_unmarked=True,
                     ignore=frozenset({"strategy", "devices", "out", "verify", "log_every", "tensorboard_every"}))


@dataclass(frozen=True)
class Task:
    """What the records and the label policy make of the prediction problem."""

    classes: list[str]
    head: Head     # cxr_tf.models.heads: multilabel | multiclass | multilabel3
    monitor: str   # val_mean_auc | val_accuracy


def resolve_task(info: RecordsInfo, cfg: FitConfig) -> Task:
    """Head and monitored metric for the records' task under ``cfg``'s label policy."""
    classes = list(cfg.classes or info.classes)
    unknown = [c for c in classes if c not in info.classes]
    if unknown:
        raise UserError(f"--classes: unknown class(es) {unknown}; the records have {', '.join(info.classes)}")
    from cxr_tf.models.heads import head_for

    head = head_for(info.task, cfg.uncertainty)
    return Task(classes, head, head.monitor)


def run_dir(cfg: FitConfig) -> Path:
    """The run directory (not created here); refuses one that holds a run with other settings (resuming
    needs the same)."""
    run = Path(cfg.out or f"runs/{cfg.model}")
    claims.claim(str(run), config_lib.to_dict(cfg), OWNER)
    return run


@dataclass(frozen=True)
class Setup:
    """What a ``FitConfig`` builds before training; ``train``, ``lr_find`` and the benchmarks start here.

    ``model`` and ``loss`` were built inside ``strategy.scope()``: compile the model there too.
    """

    info: RecordsInfo          # the records' dataset.json
    task: Task
    strategy: tf.distribute.Strategy
    global_batch: int          # per-replica batch x replicas
    steps_per_epoch: int
    validation_steps: int      # batches of one pass over val_ds
    train_ds: tf.data.Dataset  # repeated; (images float32 [B, S, S, 1] 0-255, labels, weights) batches
    val_ds: tf.data.Dataset    # one pass over the val split (or --validation-steps of it), same structure
    positives: np.ndarray      # float64 [K] train-split label counts under the label policy
    negatives: np.ndarray
    model: keras.Model         # gray [B, S, S, 1] -> input channels -> backbone -> logits
    loss: keras.losses.Loss


def prepare(cfg: FitConfig) -> Setup:
    """Devices, strategy, datasets, label counts, model and loss of ``cfg``; writes nothing.

    Call it before anything else touches TensorFlow: ``--devices`` splits the host only before TF starts.
    Sets the mixed-precision policy and the global random seed (``cfg.seed``).
    """
    strategy_lib.configure_devices(cfg.devices)
    import keras
    import tensorflow as tf

    from cxr_tf.models import build_model
    from cxr_tf.pipeline.counts import label_counts
    from cxr_tf.records import info as records_info
    from cxr_tf.training.losses import LOSSES

    info = RecordsInfo.load(cfg.records)
    if cfg.verify:
        records_info.verify_shards(cfg.records, info)
    task = resolve_task(info, cfg)
    strategy_lib.set_mixed_precision(cfg.mixed_precision)
    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        # Process-wide and irreversible: parallel reductions and scatter ops run in a fixed order (or raise).
        tf.config.experimental.enable_op_determinism()

    dist = strategy_lib.make_strategy(cfg.strategy)
    global_batch = cfg.batch_size * dist.num_replicas_in_sync
    for split in ("train", "val"):
        records_info.split_entry(cfg.records, info, split)  # a missing or empty split is one line
    train_ds, steps, val_ds, val_steps = _datasets(cfg, task, dist.num_replicas_in_sync)
    positives, negatives = label_counts(cfg.records, "train", **_label_policy(cfg, task))

    with dist.scope():
        model = build_model(cfg.model, num_classes=len(task.classes), head=task.head.name, image_size=cfg.image_size,
                            channels=cfg.input_channels, weights=cfg.weights, dropout=cfg.dropout,
                            freeze_stages=cfg.freeze_stages)
        loss = LOSSES.get(cfg.loss)(positives=positives, negatives=negatives, class_weights=cfg.class_weights)
    return Setup(info, task, dist, global_batch, steps, val_steps, train_ds, val_ds, positives, negatives,
                 model, loss)


def _label_policy(cfg: FitConfig, task: Task) -> dict[str, Any]:
    """``make_dataset``'s and ``label_counts``' label-policy arguments: the same labels for both."""
    return {"classes": task.classes, "uncertainty": cfg.uncertainty, "blank": cfg.blank,
            "propagate_parents": cfg.propagate_parents, "exclusive_classes": cfg.exclusive_classes}


def _datasets(cfg: FitConfig, task: Task, replicas: int) -> tuple[tf.data.Dataset, int, tf.data.Dataset, int]:
    """The train and val datasets of global batches and their steps per epoch and per validation pass.

    Train repeats forever (``steps`` batches make an epoch); val is ``val_steps`` batches, each image once.
    Under more than one replica both are full global batches: train drops its remainder, val pads it with
    zero-weight blanks. Single-label tasks get per-image weights ``[B]`` instead of ``[B, 1]``.
    """
    import tensorflow as tf

    from cxr_tf.pipeline import make_dataset
    from cxr_tf.pipeline.counts import example_count
    from cxr_tf.pipeline.dataset import pad_batches

    global_batch = cfg.batch_size * replicas
    train_examples = example_count(cfg.records, "train", classes=task.classes,
                                   exclusive_classes=cfg.exclusive_classes)
    # One gray channel: the model's first layer makes the input channels (cxr_tf.models.layers).
    data = dict(_label_policy(cfg, task), image_size=cfg.image_size, channels="gray1", batch_size=global_batch,
                seed=cfg.seed, cache=cfg.cache, deterministic=cfg.deterministic, workers=strategy_lib.num_workers())
    if replicas > 1:
        # Full global batches only: a last partial batch can leave a replica with no example, which
        # fails; the examples dropped differ from epoch to epoch as the shuffle does.
        if train_examples < global_batch:
            raise UserError(f"--records {cfg.records}: the train split has {train_examples} examples, fewer than "
                            f"one global batch ({cfg.batch_size} x {replicas} replicas); lower --batch-size")
        steps = cfg.steps_per_epoch or train_examples // global_batch
    else:
        steps = cfg.steps_per_epoch or -(-train_examples // global_batch)
    train_ds = make_dataset(cfg.records, "train", augment=cfg.augment, noise=cfg.noise or None,
                            balance=cfg.balance, drop_remainder=replicas > 1, **data).repeat()
    val_ds = make_dataset(cfg.records, "val", **data)
    val_examples = example_count(cfg.records, "val", classes=task.classes, exclusive_classes=cfg.exclusive_classes)
    if replicas > 1:
        val_ds, val_steps = pad_batches(val_ds, global_batch, val_examples, cfg.validation_steps)
    else:
        val_steps = min(-(-val_examples // global_batch), cfg.validation_steps or math.inf)
        val_ds = val_ds.take(val_steps)
    # Telling Keras how many batches there are spares it a false "input ran out of data" warning at the end
    # of each validation pass.
    val_ds = val_ds.apply(tf.data.experimental.assert_cardinality(val_steps))
    if task.head.exclusive:
        # One label per image, never masked: Keras weighs a per-image loss only by per-image weights (ones,
        # zero for padding).
        train_ds, val_ds = (ds.map(lambda images, labels, weights: (images, labels, weights[:, 0]))
                            for ds in (train_ds, val_ds))
    return train_ds, steps, val_ds, int(val_steps)


def compile_phase(setup: Setup, cfg: FitConfig, lr: float, trainable_backbone: bool) -> None:
    """Freeze (or unfreeze) the backbone and compile ``setup.model`` with ``cfg``'s optimizer at rate ``lr``,
    the loss and the per-class AUCs (plus accuracy for single-label tasks), inside the strategy's scope."""
    import keras

    from cxr_tf.models import freeze
    from cxr_tf.training import metrics as metric_lib
    from cxr_tf.training.optimizers import OPTIMIZERS

    task, model = setup.task, setup.model
    with setup.strategy.scope():
        if not trainable_backbone:
            freeze.freeze_backbone(model)
        else:
            freeze.unfreeze(model, keep_frozen_stages=cfg.freeze_stages)
        optimizer = OPTIMIZERS.get(cfg.optimizer)(learning_rate=lr, weight_decay=cfg.weight_decay,
                                                  momentum=cfg.momentum, nesterov=cfg.nesterov,
                                                  clipnorm=cfg.clipnorm)
        # Weighted metrics: padding examples (several replicas) have weight 0. Accuracy is only for the
        # single-label head, whose weights are per example (elsewhere they are per class: U-Ignore masks).
        accuracy = [keras.metrics.CategoricalAccuracy(name="accuracy")] if task.head.exclusive else []
        model.compile(optimizer=optimizer, loss=setup.loss, jit_compile=cfg.jit_compile,
                      weighted_metrics=accuracy + metric_lib.class_aucs(task.classes, task.head.name))


def phase_callbacks(setup: Setup, cfg: FitConfig, run: Path, name: str, lr: float, epochs: int,
                    inputs: tf.Tensor, restore_from: Path | None = None) -> list[keras.callbacks.Callback]:
    """The callbacks of one phase of ``train``, in their required order.

    Args:
        run: the run directory (a non-chief worker's scratch directory in a multi-worker run).
        name: the phase (``train``, ``phase1``, ``phase2``), naming its backup.
        restore_from: the run directory whose backup this process resumes from; default ``run``.
        lr: the phase's (maximum) learning rate.
        epochs: the phase's length in epochs, the horizon of its schedule: each phase compiles a fresh
            optimizer whose step counter starts at 0, so the fine-tuning phase anneals over its own epochs
            (S4: 1e-4 -> 0 over 3-5 epochs) instead of the tail of the whole run's.
        inputs: float32 [N, S, S, C] 0-255 images shown in TensorBoard.
    """
    import keras

    from cxr_tf.training import callbacks as cb
    from cxr_tf.training import metrics as metric_lib
    from cxr_tf.training.schedules import SCHEDULES

    history_csv = run / "history.csv"
    schedule = SCHEDULES.get(cfg.schedule)(base_lr=min(cfg.base_lr, lr), max_lr=lr,
                                           steps_per_epoch=setup.steps_per_epoch, epochs=epochs,
                                           step_size_epochs=cfg.step_size_epochs, mode=cfg.clr_mode,
                                           warmup_epochs=cfg.warmup_epochs)
    monitor = setup.task.monitor
    callbacks = [
        cb.StopOnNaN(),                          # first: no other callback sees a NaN step
        cb.ReplicaStatistics(setup.strategy),    # before any validation pass
        metric_lib.MeanAUC(setup.task.classes),  # first at epoch end: the callbacks after it read val_mean_auc
        schedule,
        cb.BestModel(run / "best.keras", history_csv, monitor, "max"),
        # Before the logs: an epoch reaches history.csv only once the model and its backup are saved.
        cb.ResumableBackup(run / "backup" / name, restore_from=(restore_from or run) / "backup" / name),
        cb.EpochTiming(run / "timing.json", setup.steps_per_epoch * setup.global_batch),
        keras.callbacks.CSVLogger(str(history_csv), append=True),
        keras.callbacks.TensorBoard(str(run / "tb"), update_freq="epoch"),
        cb.InputImages(run / "tb", inputs),
        cb.HParams(run / "tb", config_lib.to_dict(cfg), trial=Path(cfg.out or cfg.model).name),
        cb.Progress(cfg.epochs + (cfg.fine_tune_epochs if cfg.freeze == "backbone" else 0), setup.steps_per_epoch,
                    setup.global_batch, every=cfg.log_every),
    ]
    if cfg.tensorboard_every:
        callbacks.append(cb.BatchScalars(run / "tb" / "train", cfg.tensorboard_every, setup.steps_per_epoch))
    if cfg.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor, mode="max", patience=cfg.patience))
    return callbacks


def train(cfg: FitConfig) -> RunSummary:
    """Train ``cfg.model`` on ``cfg.records`` into the run directory; returns its summary (``summary.json``)."""
    run = run_dir(cfg)  # refuses a mismatched run directory before the slow set-up
    if (run / SUMMARY_FILE).exists():
        log.info("%s finished earlier with these settings; nothing to train", run)
        return dataclasses.replace(RunSummary.load(run / SUMMARY_FILE), finished_earlier=True)
    setup = prepare(cfg)
    out = _start_run(setup, cfg, run)
    _train_phases(setup, cfg, run, out)
    return _finish_run(setup, cfg, run, out)


def _start_run(setup: Setup, cfg: FitConfig, run: Path) -> Path:
    """Create ``run`` and write ``config.toml`` and ``dataset.json``; returns where this process writes.

    Only the chief of a multi-worker run writes the run directory; the other workers write the same files
    to a scratch directory (removed by ``_finish_run``) and resume from the chief's backup and phase-1 weights.
    """
    run.mkdir(parents=True, exist_ok=True)
    out = strategy_lib.scratch_dir(run)
    (out / "config.toml").write_text(config_lib.to_toml(cfg))
    setup.info.save(str(out))
    return out


def _train_phases(setup: Setup, cfg: FitConfig, run: Path, out: Path) -> None:
    """Fit one phase, or two with ``--freeze backbone`` (head on a frozen backbone, then everything); a
    phase 1 finished earlier (``phase1.weights.h5`` in ``run``) is loaded instead of trained again."""
    from cxr_tf.models.layers import CHANNELS_LAYER

    # TensorBoard shows what the backbone sees: the output of the model's input-channels layer.
    inputs = setup.model.get_layer(CHANNELS_LAYER)(next(iter(setup.val_ds.take(1)))[0][:3])
    two_phase = cfg.freeze == "backbone"
    if two_phase and (run / PHASE1_WEIGHTS).exists():
        setup.model.load_weights(str(run / PHASE1_WEIGHTS))
        log.info("phase 1 (frozen backbone) finished earlier; fine-tuning")
    else:
        _fit_phase(setup, cfg, run, out, "phase1" if two_phase else "train", (0, cfg.epochs), cfg.lr,
                   trainable_backbone=not two_phase, inputs=inputs)
        if two_phase:
            setup.model.save_weights(str(out / PHASE1_WEIGHTS))
    if two_phase and cfg.fine_tune_epochs:
        _fit_phase(setup, cfg, run, out, "phase2", (cfg.epochs, cfg.epochs + cfg.fine_tune_epochs),
                   cfg.fine_tune_lr, trainable_backbone=True, inputs=inputs)


def _fit_phase(setup: Setup, cfg: FitConfig, run: Path, out: Path, name: str, epochs: tuple[int, int], lr: float,
               *, trainable_backbone: bool, inputs: tf.Tensor) -> None:
    """Compile for phase ``name``, add its parameter counts to ``params.json`` and fit epochs
    ``epochs[0]`` to ``epochs[1]`` at rate ``lr``, writing to ``out`` and resuming from ``run``'s backup."""
    import tensorflow as tf

    model = setup.model
    compile_phase(setup, cfg, lr, trainable_backbone)
    params = _read_params(out)
    params[name] = {"total": int(model.count_params()),
                    "trainable": int(sum(int(tf.size(w)) for w in model.trainable_weights))}
    (out / PARAMS).write_text(json.dumps(params, indent=2))
    model.fit(setup.train_ds, validation_data=setup.val_ds, epochs=epochs[1], initial_epoch=epochs[0],
              steps_per_epoch=setup.steps_per_epoch, validation_steps=setup.validation_steps,
              callbacks=phase_callbacks(setup, cfg, out, name, lr, epochs[1] - epochs[0], inputs, restore_from=run),
              shuffle=False, verbose=0)  # the records pipeline shuffles; cb.Progress reports


def _read_params(out: Path) -> dict[str, dict[str, int]]:
    """``params.json`` of ``out``: phase -> total and trainable parameters; kept across resumes, so a run
    resumed in phase 2 still reports phase 1's. Empty before the first phase."""
    path = out / PARAMS
    return json.loads(path.read_text()) if path.exists() else {}


def _finish_run(setup: Setup, cfg: FitConfig, run: Path, out: Path) -> RunSummary:
    """Drop the backup, write ``summary.json`` (last: a run with a summary is finished, and re-running its
    command trains nothing again), remove a non-chief's scratch directory; returns the summary."""
    from cxr_tf.io import atomic
    from cxr_tf.training import callbacks as cb

    shutil.rmtree(out / "backup", ignore_errors=True)
    best = cb.best_so_far(out / "history.csv", setup.task.monitor, "max")
    summary = RunSummary(str(run), setup.task.monitor, best, _read_params(out),
                         cfg.epochs + (cfg.fine_tune_epochs if cfg.freeze == "backbone" else 0))
    atomic.write_text(str(out / SUMMARY_FILE), summary.to_text())
    strategy_lib.remove_scratch(out, run)
    return summary
