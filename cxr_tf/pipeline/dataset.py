"""``make_dataset``: a records directory -> a batched ``tf.data.Dataset`` ready for ``model.fit``.

Stages (all pure TensorFlow ops, so the whole graph runs in the C++ tf.data runtime on every core):

    shard files -> interleaved parallel reads -> [cache] -> [shuffle] -> parse + label policy
    -> [balance] -> (+ per-example seed) -> decode, resize or random warp, noise,
    photometric jitter + channels (one table lookup) (parallel map) -> batch -> prefetch

The warp and the table look-up are XLA-compiled TensorFlow functions inside the map: each fuses its
pixel passes into one loop (``augment.random_warp``, ``to_channels``).

Under a ``tf.distribute`` strategy each batch is split over the replicas, and a replica given no example
fails (BatchNormalization: "Incompatible shapes: [32] vs. [0,64,64,3]"); so does Keras when the first
batch splits unevenly. Training drops the last partial batch (``drop_remainder``); evaluation pads it
(``pad_batches``), so that every example is still seen exactly once.
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from cxr_tf import labels, reporting
from cxr_tf.errors import UserError
from cxr_tf.pipeline import augment as augment_lib
from cxr_tf.pipeline import balance as balance_lib
from cxr_tf.pipeline import enhance as enhance_lib
from cxr_tf.pipeline import label_policy, noise as noise_lib, parse
from cxr_tf.pipeline.model_input import to_model_side
from cxr_tf.records import info as records_info
from cxr_tf.registry import Choices

log = reporting.logger("pipeline")

CHANNEL_MODES = Choices("channels", ("enhance", "gray3", "gray1"))
SHUFFLE_BUFFER = 1024
AUTOTUNE = tf.data.AUTOTUNE


def select_classes(available: Sequence[str], wanted: Sequence[str] | None) -> list[int]:
    """Indices of ``wanted`` among ``available`` (all when ``None``); an unknown name lists the valid ones."""
    if wanted is None:
        return list(range(len(available)))
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise UserError(f"classes: {', '.join(map(repr, unknown))} not in the records; "
                        f"valid: {', '.join(available)}")
    return [list(available).index(name) for name in wanted]


def shard_policy(num_files: int, workers: int, seeded: bool = False) -> tf.data.experimental.AutoShardPolicy:
    """FILE sharding when every worker gets at least one file (no wasted reads), else DATA.

    ``seeded`` pipelines (augmentation or noise) zip the examples with a ``Dataset.random`` stream of
    per-example seeds, a second source that FILE sharding refuses ("Did not find a shardable source");
    they shard by DATA when there is more than one worker, at the cost of every worker reading every file.
    """
    policy = tf.data.experimental.AutoShardPolicy
    return policy.FILE if num_files >= workers and not (seeded and workers > 1) else policy.DATA


def to_channels(image: tf.Tensor, mode: str, photometric: dict[str, tf.Tensor] | None = None) -> tf.Tensor:
    """float32 ``[H, W, 1]`` 0-255 -> float32 ``[H, W, C]`` 0-255 for ``mode`` in ``CHANNEL_MODES``.

    ``enhance`` (and any ``photometric`` jitter, ``augment.draw_photometric`` parameters) work on 8-bit
    gray levels: the image is rounded, one histogram gives a 256-entry table per output channel (jitter
    first, then identity / equalization / stretch of the jittered image), and one ``tf.gather`` applies
    them all.
    """
    if photometric is None and mode != "enhance":
        return image if mode == "gray1" else tf.tile(image, [1, 1, 3])
    hist = enhance_lib.histogram(image)
    if mode == "enhance":
        # Measured: under XLA the enhancement tables take ~1.4x longer, so only the look-up is compiled.
        return _look_up(_level_tables(hist, mode, photometric), image)
    return _tables_looked_up(image, hist, mode, photometric)


def _level_tables(hist: tf.Tensor, mode: str, photometric: dict[str, tf.Tensor] | None) -> tf.Tensor:
    """float32 ``[256, C]``: each output channel's value of each gray level, from the int32 ``[256]``
    histogram of the image."""
    if photometric is None:
        jittered = tf.range(256)
    else:
        jittered = tf.cast(tf.round(augment_lib.photometric_table(hist, **photometric)), tf.int32)
    if mode == "enhance":
        # Histogram of the jittered image, moved level by level, without another pass over the pixels.
        moved = tf.math.unsorted_segment_sum(hist, jittered, 256)
        return tf.gather(enhance_lib.channel_tables(moved), jittered)
    return tf.tile(tf.cast(jittered, tf.float32)[:, tf.newaxis], [1, 3 if mode == "gray3" else 1])


@tf.function(jit_compile=True)
def _look_up(tables: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """float32 ``[256, C]`` tables applied to float32 ``[H, W, 1]`` 0-255 rounded to levels (half up,
    values outside clamped) -> ``[H, W, C]``.

    XLA fuses the rounding into the gather: one pass over the pixels instead of four (clip, add, cast,
    gather), half the time on the CPU.
    """
    levels = tf.cast(tf.clip_by_value(image[..., 0], 0.0, 255.0) + 0.5, tf.int32)
    return tf.gather(tables, levels)


@tf.function(jit_compile=True)
def _tables_looked_up(image: tf.Tensor, hist: tf.Tensor, mode: str,
                      photometric: dict[str, tf.Tensor] | None) -> tf.Tensor:
    # The ~20 small ops on the 256-entry tables in the same XLA call as the look-up: each TensorFlow
    # kernel costs ~5-10 us to launch in the tf.data executor, as much as its arithmetic.
    return _look_up(_level_tables(hist, mode, photometric), image)


def split_examples(info: records_info.RecordsInfo, split: str, selected: Sequence[int]) -> int:
    """Examples ``make_dataset`` yields for ``split`` (without balancing), from ``dataset.json``'s counts.

    A single-label task keeps only the examples of the ``selected`` classes, one positive each.
    """
    entry = info.splits[split]
    if info.task == "multiclass" and len(selected) < len(info.classes):
        return sum(entry.positives(info.classes[c]) for c in selected)
    return int(entry.examples)


def pad_batches(ds: tf.data.Dataset, batch_size: int, examples: int,
                steps: int | None = None) -> tuple[tf.data.Dataset, int]:
    """Every batch of an ``(images, labels, weights)`` stream of ``examples`` made ``batch_size`` long.

    The last partial batch is padded with all-zero examples of weight 0, so a strategy splits every batch
    evenly. Keras averages a loss over batch slots, pads included; the weights of the real examples are
    therefore scaled by ``slots / examples`` (over the ``steps`` batches read, default all), which makes the
    mean loss the mean over the real examples and leaves ratios of weights (AUC, accuracy) unchanged.

    Returns:
        The stream (at most ``steps`` batches; weights float32, scaled) and its number of batches.
    """
    batches = -(-examples // batch_size)
    if steps is not None:
        batches = min(batches, steps)
    scale = batches * batch_size / min(examples, batches * batch_size)

    @tf.autograph.experimental.do_not_convert
    def pad(images: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, ...]:
        missing = batch_size - tf.shape(images)[0]

        def fill(t: tf.Tensor) -> tf.Tensor:
            return tf.pad(t, [[0, missing]] + [[0, 0]] * (t.shape.rank - 1))

        return fill(images), fill(labels), fill(weights) * scale

    return ds.take(batches).map(pad, num_parallel_calls=AUTOTUNE), batches


def serialized_records(paths: Sequence[str], *, shuffle: bool = False, seed: int | None = None,
                       deterministic: bool = True) -> tf.data.Dataset:
    """The serialized records of shard files ``paths``, in the order ``make_dataset`` reads them.

    Up to 8 shards are interleaved; with ``shuffle`` the shard order is reshuffled each epoch. Without
    ``shuffle`` and with ``deterministic`` the order is fixed, so code reading other features of the same
    records (evaluate's paths and patients) lines up with ``make_dataset``'s examples.
    """
    files = tf.data.Dataset.from_tensor_slices(list(paths))
    if shuffle:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    return files.interleave(tf.data.TFRecordDataset, cycle_length=min(len(paths), 8),
                            num_parallel_calls=AUTOTUNE, deterministic=deterministic)


def make_dataset(
    records: str,
    split: str,
    *,
    classes: Sequence[str] | None = None,
    uncertainty: str = "ones",
    blank: str = "zeros",
    propagate_parents: str = "none",
    exclusive_classes: bool = False,
    image_size: int = 224,
    channels: str = "gray1",
    augment: bool = False,
    noise: str | Sequence[str] | None = None,
    balance: str = "none",
    batch_size: int = 32,
    shuffle: bool | None = None,
    seed: int | None = None,
    cache: bool | str = False,
    deterministic: bool = False,
    drop_remainder: bool = False,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    augment_config: augment_lib.AugmentConfig = augment_lib.AugmentConfig(),
    transform_all_splits: bool = False,
    workers: int = 1,
) -> tf.data.Dataset:
    """A batched dataset of one split of a records directory.

    Args:
        records: records directory (local path or ``gs://``/``s3://`` URL) holding ``dataset.json``.
        split: split name in ``dataset.json`` (``train``, ``val``, ``test``...).
        classes: subset of the dataset's classes, by name, in the output order; default all. For a
            single-label task, examples of the other classes are dropped.
        uncertainty: ``ones`` | ``zeros`` | ``ignore`` | ``multiclass`` (see ``label_policy``).
            ``multiclass`` gives labels float32 ``[B, K, 3]`` one-hot over (negative, positive, uncertain).
        blank: ``zeros`` | ``ignore``.
        propagate_parents: ``none`` | ``positive`` | ``uncertain``: which child states make every
            ancestor in ``dataset.json``'s label tree positive (before the uncertainty policy).
        exclusive_classes: keep only the images whose findings all lie within ``classes``: an image
            positive for any other class of the records (after ``propagate_parents``) is dropped. S2's
            "only four classes of diseases were left" read as a subset of images, not of labels.
        image_size: output side, pixels.
        channels: ``gray1`` (default: the stored gray image, what ``fit`` feeds every zoo model, whose
            first layer makes fit's ``--channels``) | ``enhance`` (image, equalized, stretched) | ``gray3``
            (image x3).
        augment: random warp and photometric jitter (``augment.py``), on the ``train`` split only
            unless ``transform_all_splits``.
        noise: a noise spec ``"poisson:0.05"`` or several, applied in order (``noise.py``), on the
            ``train`` split only unless ``transform_all_splits``.
        balance: ``none`` | ``oversample`` | ``undersample``, single-label tasks only.
        batch_size: global batch size.
        shuffle: shuffle files and examples; ``None`` means True for ``train``.
        seed: seed of shuffling, balancing, augmentation and noise. With ``deterministic=True`` two
            datasets built with the same seed yield the same batches; epochs still differ.
        cache: ``True`` caches the serialized records (not the decoded images) in memory during the first
            epoch, a string caches them in that file; images are decoded anew every epoch.
        deterministic: keep element order fixed in parallel stages (costs some throughput).
        drop_remainder: drop the last partial batch (static batch dimension, e.g. for TPUs).
        shuffle_buffer: examples in the shuffle buffer.
        augment_config: ranges of the augmentation.
        transform_all_splits: apply ``augment`` and ``noise`` on every split (the evaluate command's
            noise-robustness sweep, test-time augmentation).
        workers: machines of a multi-worker job reading this dataset (``training.strategy.num_workers``);
            decides how ``tf.distribute`` shards it (``shard_policy``).

    Returns:
        ``(images float32 [B, H, W, C] in 0-255, labels float32 [B, K] (or [B, K, 3]), weights float32
        [B, K] in {0, 1})``. Multilabel weights are the loss mask of the policy; single-label tasks give
        one-hot labels and weights of ones.
    """
    info = records_info.RecordsInfo.load(records)
    paths = records_info.shard_paths(records, info, split)
    selected = select_classes(info.classes, classes)
    _check_arguments(records, info, channels, uncertainty, blank, propagate_parents, balance)
    transform = split == "train" or transform_all_splits
    shuffle = split == "train" if shuffle is None else shuffle
    augment = augment and transform
    specs = [noise] if isinstance(noise, str) else list(noise or [])
    noises = [noise_lib.parse_noise(spec) for spec in specs] if transform else []
    random = augment or bool(noises)

    ds = serialized_records(paths, shuffle=shuffle, seed=seed, deterministic=deterministic)
    if cache:
        ds = ds.cache("" if cache is True else cache)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    labelled = _label_parser(info, selected, uncertainty, blank, propagate_parents, exclusive_classes)
    ds = ds.map(labelled, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = _kept_examples(ds, info, split, selected, exclusive_classes, balance, seed)
    if random:
        ds = _with_example_seeds(ds, shuffle, seed)
    preprocess = _preprocessor(image_size, channels, augment, noises, augment_config)
    ds = ds.map(preprocess, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = shard_policy(len(paths), workers, seeded=random)
    log.debug("%s/%s: %d shards, classes %s", records, split, len(paths), [info.classes[c] for c in selected])
    return ds.with_options(options)


def _check_arguments(records: str, info: records_info.RecordsInfo, channels: str, uncertainty: str, blank: str,
                     propagate_parents: str, balance: str) -> None:
    """Refuse, in one line, a choice ``make_dataset`` does not know or one the records' task cannot take."""
    single_label = info.task == "multiclass"
    CHANNEL_MODES.check(channels, "channels")
    labels.PROPAGATION_MODES.check(propagate_parents, "propagate_parents")
    labels.UNCERTAINTY_POLICIES.check(uncertainty, "uncertainty")
    labels.BLANK_POLICIES.check(blank, "blank")
    if single_label and uncertainty == "multiclass":
        raise UserError(f"uncertainty='multiclass' needs a multilabel dataset; {records} is single-label")
    if balance != "none" and not single_label:
        raise UserError(f"balance={balance!r} needs a single-label dataset; {records} is multilabel "
                        "(use a weighted loss instead)")


def _label_parser(info: records_info.RecordsInfo, selected: Sequence[int], uncertainty: str, blank: str,
                  propagate_parents: str, exclusive_classes: bool) -> Callable[[tf.Tensor], dict]:
    """serialized ``tf.train.Example`` -> its features with ``label`` and ``weight`` float32 ``[K]`` (or
    ``[K, 3]``) of the ``selected`` classes under the label policy; with ``exclusive_classes``, also
    ``outside`` (bool: positive for a class not selected)."""
    ancestors = label_policy.ancestor_matrix(info.classes, info.label_tree)
    others = tf.constant([c for c in range(len(info.classes)) if c not in selected], tf.int32)
    single_label = info.task == "multiclass"

    # Build-time Python control flow only: tf.data need not run autograph on this function.
    @tf.autograph.experimental.do_not_convert
    def parse_and_label(serialized: tf.Tensor) -> dict:
        element = parse.decode_example(serialized, len(info.classes))
        state = element.pop(parse.STATE)
        if exclusive_classes:
            element["outside"] = tf.reduce_any(tf.equal(tf.gather(state, others), labels.POSITIVE))
        if single_label:
            label = tf.cast(tf.equal(tf.gather(state, selected), 1), tf.float32)
            weight = tf.ones([len(selected)], tf.float32)
        else:
            state = label_policy.propagate(state, ancestors, propagate_parents)
            label, weight = label_policy.apply_policy(tf.gather(state, selected), uncertainty, blank)
        return {**element, "label": label, "weight": weight}

    return parse_and_label


def _kept_examples(ds: tf.data.Dataset, info: records_info.RecordsInfo, split: str, selected: Sequence[int],
                   exclusive_classes: bool, balance: str, seed: int | None) -> tf.data.Dataset:
    """The labelled examples ``make_dataset`` keeps: without the ``outside`` ones under ``exclusive_classes``,
    and for a single-label task only those of the ``selected`` classes, balanced by ``balance``."""
    if exclusive_classes:
        ds = ds.filter(tf.autograph.experimental.do_not_convert(lambda element: tf.logical_not(element["outside"])))
    if info.task != "multiclass":
        return ds
    # Examples of unselected classes carry an all-zero one-hot row.
    if len(selected) < len(info.classes):
        ds = ds.filter(tf.autograph.experimental.do_not_convert(lambda element: tf.reduce_any(element["label"] > 0)))
    counts = [info.splits[split].positives(info.classes[c]) for c in selected]
    return balance_lib.balance(ds, balance, counts, seed)


def _with_example_seeds(ds: tf.data.Dataset, shuffle: bool, seed: int | None) -> tf.data.Dataset:
    """``(element, seed int64 [2])`` pairs: one seed per example for its augmentation and noise.

    Drawn after shuffling and balancing so that an example's augmentation follows its position in the
    stream. Shuffled (training) streams are rerandomised each epoch, identical for identical seeds and
    global seed (fit sets both). Unshuffled streams (evaluation under noise) take (seed, position), so the
    same examples get the same noise whatever the process did before.
    """
    if shuffle:
        return tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2))
    positions = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.constant(seed or 0, tf.int64), i]))
    return tf.data.Dataset.zip(ds, positions)


def _preprocessor(image_size: int, channels: str, augment: bool, noises: Sequence[tuple[str, float]],
                  augment_config: augment_lib.AugmentConfig) -> Callable[..., tuple[tf.Tensor, ...]]:
    """``(element[, example seed])`` -> ``(image float32 [S, S, C] 0-255, label, weight)``: decode, resize or
    random warp, noise, then photometric jitter and channels in one table look-up."""
    random = augment or bool(noises)

    @tf.autograph.experimental.do_not_convert
    def preprocess(element: dict, example_seed: tf.Tensor | None = None) -> tuple[tf.Tensor, ...]:
        image = parse.decode_image(element[parse.IMAGE])
        seeds = tf.unstack(tf.random.experimental.stateless_split(example_seed, 2 + len(noises))) if random else []
        if augment:
            image = augment_lib.random_warp(image, image_size, seeds[0], augment_config)
        else:
            image = to_model_side(tf.cast(image, tf.float32), image_size)
        for (name, level), noise_seed in zip(noises, seeds[2:]):
            image = noise_lib.apply_noise(image, name, level, noise_seed)
        photometric = augment_lib.draw_photometric(seeds[1], augment_config) if augment else None
        image = to_channels(image, channels, photometric)
        image.set_shape([image_size, image_size, 3 if channels != "gray1" else 1])
        return image, element["label"], element["weight"]

    return preprocess
