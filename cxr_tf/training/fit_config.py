"""``FitConfig``: every flag of ``python -m cxr_tf.fit`` and every key of a ``pipelines/*.toml`` recipe.

A field ``fine_tune_lr`` is the flag ``--fine-tune-lr`` and the recipe key ``fine_tune_lr``; a run saves
the resolved config as ``config.toml`` in its directory, so ``--recipe runs/X/config.toml`` repeats it.
"""

from __future__ import annotations

import dataclasses

from cxr_tf.config import SEED_MAX, option, required
from cxr_tf.io.imaging import MAX_SIDE, MIN_SIDE
from cxr_tf.labels import BLANK_POLICIES, PROPAGATION_MODES, UNCERTAINTY_POLICIES
from cxr_tf.registry import Choices, lazy
from cxr_tf.training.strategy import STRATEGIES

# --freeze: ``backbone`` trains the head alone, then fine-tunes everything (fit's two phases).
FREEZE_MODES = Choices("freeze mode", ("none", "backbone"))


@dataclasses.dataclass(kw_only=True)
class FitConfig:
    """Flags of fit (and keys of a recipe)."""

    # Data and label policy (see cxr_tf.pipeline.make_dataset).
    records: str = required("records directory written by build_records")
    classes: list[str] | None = option(None, "classes to learn (default: all of the records)")
    uncertainty: str = option("ones", "uncertain labels: ones (U-Ones), zeros, ignore (masked), multiclass "
                                      "(3-way softmax per class)", choices=UNCERTAINTY_POLICIES)
    blank: str = option("zeros", "blank labels: negative (zeros) or masked out of the loss (ignore)",
                        choices=BLANK_POLICIES)
    propagate_parents: str = option("none", "label tree: none, positive (a positive child makes its parents "
                                            "positive) or uncertain (a positive or uncertain child does)",
                                    choices=PROPAGATION_MODES)
    exclusive_classes: bool = option(False, "keep only the images whose findings all lie within --classes (an "
                                            "image positive for another class of the records is dropped)")
    image_size: int = option(224, "model input side, pixels", at_least=MIN_SIDE, at_most=MAX_SIDE)
    channels: str = option("gray3", "input channels: gray3 (image x3), gray1, enhance (image, equalised, "
                                    "contrast-stretched)", choices=lazy("cxr_tf.models.layers", "CHANNELS"))
    enhance: bool = option(False, "shorthand for --channels enhance")
    # Off by default: none of S1, S2, S4 and S5 augments (S3 tried it and dropped it), so a recipe that
    # leaves it out must not silently differ from its study.
    augment: bool = option(False, "random crop, rotation, translation, brightness/contrast/gamma on train")
    noise: list[str] = option([], "radiographic noise on train, e.g. poisson:0.5 gaussian:5 (repeatable)")
    balance: str = option("none", "single-label tasks: class balance by sampling",
                          choices=lazy("cxr_tf.pipeline.balance", "BALANCE_MODES"))
    cache: bool = option(False, "keep the serialized records in memory after the first epoch (images are still "
                                "decoded every epoch)")
    verify: bool = option(False, "check every shard's sha256 against dataset.json first (reads the records once)")
    # Model.
    model: str = option("densenet121", "model zoo name (see --list-models)", lists="models",
                        choices=lazy("cxr_tf.models", "MODELS"))
    weights: str = option("imagenet", "none, imagenet (Keras cache) or a .keras/.weights.h5 file or run directory")
    dropout: float = option(0.0, "dropout before the classification layer", at_least=0, below=1)
    freeze_stages: int = option(0, "freeze the first K stages of the backbone", at_least=0)
    freeze: str = option("none", "backbone: train the head only for --epochs, then fine-tune everything for "
                                 "--fine-tune-epochs", choices=FREEZE_MODES)
    fine_tune_epochs: int = option(0, "epochs of full fine-tuning after a frozen-backbone phase", at_least=0)
    fine_tune_lr: float = option(1e-4, "learning rate of the fine-tuning phase", above=0)
    # Optimisation.
    loss: str = option("weighted_bce", "loss (see --list-losses)", lists="losses",
                       choices=lazy("cxr_tf.training.losses", "LOSSES"))
    class_weights: list[float] | None = option(None, "per-class weights of categorical_ce, e.g. 3 1",
                                                at_least=0)
    optimizer: str = option("adam", "optimizer", choices=lazy("cxr_tf.training.optimizers", "OPTIMIZERS"))
    lr: float = option(1e-3, "learning rate (the maximum of a cyclical or cosine schedule)", above=0)
    weight_decay: float = option(0.0, "decoupled weight decay (adamw)", at_least=0)
    momentum: float = option(0.9, "sgd momentum", at_least=0, at_most=1)
    nesterov: bool = option(False, "sgd Nesterov momentum")
    clipnorm: float | None = option(None, "clip each gradient to this norm", above=0)
    schedule: str = option("cyclic", "learning-rate schedule",
                           choices=lazy("cxr_tf.training.schedules", "SCHEDULES"))
    clr_mode: str = option("triangular", "cyclic schedule's mode (Smith 2017)",
                           choices=lazy("cxr_tf.training.schedules", "CLR_MODES"))
    base_lr: float = option(1e-4, "lower bound of the cyclical learning rate", above=0)
    step_size_epochs: float = option(2.0, "cyclic half-cycle in epochs (Smith 2017: 2-10)", above=0)
    warmup_epochs: float = option(0.0, "cosine: linear warm-up epochs", at_least=0)
    batch_size: int = option(32, "batch size per replica (global batch = this x replicas)", at_least=1)
    epochs: int = option(10, "epochs (of the frozen phase when --freeze backbone)", at_least=1)
    steps_per_epoch: int | None = option(None, "limit steps per epoch (quick trials)", at_least=1)
    validation_steps: int | None = option(None, "limit validation steps", at_least=1)
    patience: int | None = option(None, "early stopping after this many epochs without improvement "
                                          "(0 or unset: none)", at_least=0)
    seed: int = option(0, "seed of shuffling, augmentation and initialisation", at_least=0, at_most=SEED_MAX)
    deterministic: bool = option(False, "bit-identical weights from run to run on the CPU: TensorFlow's op "
                                        "determinism and a fixed tf.data order (slower input pipeline)")
    # Where and how.
    out: str = option("", "run directory (default runs/<model>); re-running a killed run resumes it")
    strategy: str = option("auto", "tf.distribute strategy", choices=STRATEGIES)
    devices: str = option("", "split the host into N logical devices, e.g. cpu:2")
    mixed_precision: bool = option(False, "float16 on GPU, bfloat16 on CPU")
    jit_compile: bool = option(False, "XLA-compile the training step")
    # Feedback (not part of what is learnt: a run resumes whatever these are).
    log_every: int = option(0, "steps between progress lines when stdout is not a terminal; 0 = about once a "
                               "minute", at_least=0)
    tensorboard_every: int = option(50, "steps between per-batch loss and learning-rate points in TensorBoard; "
                                        "0 = none", at_least=0)

    @property
    def input_channels(self) -> str:
        return "enhance" if self.enhance else self.channels
