"""make_dataset: shapes per channel mode, labels from the policy, determinism, pure-TF graph, balancing,
sharding under tf.distribute."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from cxr_tf.errors import UserError
from cxr_tf.pipeline import make_dataset
from cxr_tf.pipeline import augment
from cxr_tf.pipeline.counts import label_counts
from cxr_tf.pipeline.dataset import shard_policy, to_channels
from cxr_tf.pipeline.enhance import enhance
from tests.records_util import write_records

CLASSES = ["Atelectasis", "Cardiomegaly", "Enlarged Cardiomediastinum"]
TREE = {"Cardiomegaly": "Enlarged Cardiomediastinum"}
# One example per raw state of Cardiomegaly; the parent is negative everywhere.
STATES = [[1, 1, 0], [0, 0, 0], [-1, -1, 0], [-2, -2, 0]]
PY_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def images(n, size=40):
    rng = np.random.default_rng(n)
    return [rng.integers(20, 230, (size, size), dtype=np.uint8) for _ in range(n)]


@pytest.fixture
def multilabel(tmp_path):
    return write_records(tmp_path, images(4), STATES, CLASSES, label_tree=TREE)


@pytest.fixture
def single_label(tmp_path):
    # 8 Normal, 2 Bacterial, 2 Viral (one-hot states), Kermany-like imbalance.
    states = [[1, 0, 0]] * 8 + [[0, 1, 0]] * 2 + [[0, 0, 1]] * 2
    return write_records(tmp_path, images(12, 16), states, ["normal", "bacterial", "viral"], task="multiclass")


def every_example(ds):
    images_, labels, weights = zip(*[(x.numpy(), y.numpy(), w.numpy()) for x, y, w in ds])
    return np.concatenate(images_), np.concatenate(labels), np.concatenate(weights)


@pytest.mark.parametrize("channels, depth", [("enhance", 3), ("gray3", 3), ("gray1", 1)])
@pytest.mark.parametrize("augment", [False, True])
def test_shapes_and_dtypes_per_channel_mode(multilabel, channels, depth, augment):
    ds = make_dataset(multilabel, "train", channels=channels, image_size=32, batch_size=3, augment=augment,
                      noise="gaussian:2", seed=0)
    assert ds.element_spec[0].shape.as_list() == [None, 32, 32, depth]
    x, y, w = next(iter(ds))
    assert x.shape == (3, 32, 32, depth) and y.shape == (3, 3) and w.shape == (3, 3)
    assert x.dtype == y.dtype == w.dtype == tf.float32
    assert 0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 255


def test_gray3_replicates_the_resized_image(multilabel):
    ds = make_dataset(multilabel, "train", channels="gray3", image_size=40, batch_size=4, augment=False)
    x, _, _ = next(iter(ds))
    np.testing.assert_array_equal(x[..., 0].numpy(), x[..., 2].numpy())


def test_enhance_channels_are_enhance_of_the_rounded_image():
    image = np.random.default_rng(2).uniform(30, 200, (20, 20, 1)).astype(np.float32)
    rounded = np.round(image).astype(np.uint8)
    np.testing.assert_array_equal(to_channels(tf.constant(image), "enhance").numpy(), enhance(tf.constant(rounded)))


def test_photometric_jitter_is_applied_before_the_enhancement():
    image = np.random.default_rng(3).integers(30, 200, (20, 20, 1)).astype(np.float32)
    jitter = dict(brightness=15.0, contrast=1.2, gamma=0.8)
    hist = np.bincount(image.astype(int).ravel(), minlength=256)
    table = np.round(augment.photometric_table(tf.constant(hist, tf.int32), **jitter).numpy())
    jittered = table[image.astype(int)].astype(np.uint8)
    out = to_channels(tf.constant(image), "enhance", {k: tf.constant(v) for k, v in jitter.items()}).numpy()
    np.testing.assert_array_equal(out, enhance(tf.constant(jittered)).numpy())


def test_u_ignore_masks_uncertain_labels_and_propagation_lifts_the_parent(multilabel):
    ds = make_dataset(multilabel, "train", classes=["Cardiomegaly", "Enlarged Cardiomediastinum"],
                      uncertainty="ignore", blank="zeros", propagate_parents="uncertain", image_size=16,
                      batch_size=4, shuffle=False, augment=False, deterministic=True)
    _, labels, weights = every_example(ds)
    # Unshuffled, the interleave of the two shards undoes write_records' round-robin: rows are STATES.
    np.testing.assert_array_equal(labels, [[1, 1], [0, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(weights, [[1, 1], [1, 1], [0, 1], [1, 1]])


def test_u_multiclass_gives_three_states_per_class(multilabel):
    ds = make_dataset(multilabel, "train", classes=["Cardiomegaly"], uncertainty="multiclass", image_size=16,
                      batch_size=4, augment=False)
    _, labels, weights = every_example(ds)
    assert labels.shape == (4, 1, 3) and weights.shape == (4, 1)
    assert sorted(map(tuple, labels[:, 0].tolist())) == [(0, 0, 1), (0, 1, 0), (1, 0, 0), (1, 0, 0)]


def test_unknown_class_lists_the_valid_ones(multilabel):
    with pytest.raises(UserError, match="Effusion.*valid: Atelectasis, Cardiomegaly"):
        make_dataset(multilabel, "train", classes=["Effusion"])


def test_single_label_gives_one_hot_labels_and_unit_weights(single_label):
    _, labels, weights = every_example(make_dataset(single_label, "train", image_size=16, batch_size=5))
    assert labels.shape == (12, 3) and (labels.sum(axis=1) == 1).all() and (weights == 1).all()
    assert labels.sum(axis=0).tolist() == [8, 2, 2]


def test_single_label_subset_drops_other_classes(single_label):
    _, labels, _ = every_example(make_dataset(single_label, "train", classes=["viral", "normal"], image_size=16))
    assert labels.sum(axis=0).tolist() == [2, 8]


def test_same_seed_same_batches_and_epochs_differ(multilabel):
    def build():
        return make_dataset(multilabel, "train", image_size=24, batch_size=2, augment=True, noise="poisson:0.05",
                            seed=7, deterministic=True)

    first, second = every_example(build()), every_example(build())
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    ds = build()
    assert not np.array_equal(every_example(ds)[0], every_example(ds)[0]), "each epoch must draw new augmentations"


def test_unshuffled_noise_depends_on_the_seed_and_position_only(multilabel):
    # Evaluation under noise must not change with whatever set TensorFlow's global seed before.
    def noisy():
        return every_example(make_dataset(multilabel, "train", image_size=24, batch_size=2, shuffle=False,
                                          noise="gaussian:20", seed=3, deterministic=True))[0]

    before = noisy()
    tf.random.set_seed(123)
    np.testing.assert_array_equal(noisy(), before)
    assert not np.array_equal(before[0], before[1]), "each example draws its own noise"


def test_augment_and_noise_touch_only_the_train_split_unless_asked(tmp_path):
    for split in ("train", "val"):
        records = write_records(tmp_path, images(4), STATES, CLASSES, split=split)

    def pixels(split, **kwargs):
        return every_example(make_dataset(records, split, channels="gray1", image_size=24, shuffle=False,
                                          deterministic=True, seed=0, **kwargs))[0]

    clean = pixels("val")
    np.testing.assert_array_equal(pixels("val", augment=True, noise="gaussian:20"), clean)
    assert not np.array_equal(pixels("val", augment=True, noise="gaussian:20", transform_all_splits=True), clean)
    assert not np.array_equal(pixels("train", augment=True), clean)


def graph_ops(ds) -> set[str]:
    graph = tf.compat.v1.GraphDef.FromString(ds._as_serialized_graph().numpy())
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return {node.op for node in nodes}


def test_pipeline_graph_has_no_python_functions(multilabel):
    ds = make_dataset(multilabel, "train", image_size=16, augment=True, noise=["blur:1", "jpeg:50"], seed=1)
    ops = graph_ops(ds)
    assert "ParseExampleV2" in ops or "ParseSingleExample" in ops
    assert not ops & PY_OPS
    # The check itself can see a Python function when there is one.
    assert graph_ops(ds.map(lambda x, y, w: tf.py_function(lambda v: v, [y], tf.float32))) & PY_OPS


@pytest.mark.parametrize("mode, expected", [("undersample", [2, 2, 2]), ("none", [8, 2, 2])])
def test_balancing_counts_per_epoch(single_label, mode, expected):
    ds = make_dataset(single_label, "train", balance=mode, image_size=16, batch_size=4, seed=3)
    assert every_example(ds)[1].sum(axis=0).tolist() == expected


def test_oversampling_draws_classes_equally(single_label):
    ds = make_dataset(single_label, "train", balance="oversample", image_size=16, batch_size=12, seed=3)
    epochs = [every_example(ds)[1] for _ in range(20)]
    assert all(len(epoch) == 12 for epoch in epochs), "an epoch keeps the split's size"
    labels = np.concatenate(epochs)
    np.testing.assert_allclose(labels.mean(axis=0), [1 / 3] * 3, atol=0.08)  # unbalanced: [0.67, 0.17, 0.17]


def test_balancing_a_multilabel_dataset_is_refused(multilabel):
    with pytest.raises(UserError, match="single-label"):
        make_dataset(multilabel, "train", balance="oversample")


@pytest.mark.parametrize("files, workers, seeded, policy", [
    (2, 1, False, "FILE"), (4, 4, False, "FILE"), (2, 3, False, "DATA"), (4, 2, True, "DATA"), (4, 1, True, "FILE"),
])
def test_auto_shard_policy(files, workers, seeded, policy):
    assert shard_policy(files, workers, seeded) == getattr(tf.data.experimental.AutoShardPolicy, policy)


@pytest.mark.parametrize("augment", [False, True])
def test_two_workers_shards_split_the_examples(tmp_path, augment):
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

    # What MultiWorkerMirroredStrategy does to the dataset of each of two workers.
    flat = [np.full((16, 16), 10 * i, np.uint8) for i in range(12)]
    records = write_records(tmp_path, flat, [[1]] * 12, ["Finding"], shards=4)
    ds = make_dataset(records, "train", channels="gray1", image_size=8, batch_size=2, augment=augment,
                      seed=0, workers=2)
    seen = [every_example(_AutoShardDataset(ds, 2, worker))[0] for worker in range(2)]
    assert len(seen[0]) + len(seen[1]) == 12
    if not augment:  # flat images keep their gray level: each example on exactly one worker
        ids = sorted(np.round(np.concatenate(seen).mean(axis=(1, 2, 3)) / 10).astype(int).tolist())
        assert ids == list(range(12))


MIRRORED = """
import json, numpy as np
from cxr_tf.training import strategy
strategy.configure_devices("cpu:2")
import tensorflow as tf
from cxr_tf.pipeline import make_dataset
s = strategy.make_strategy("mirrored")
ds = make_dataset({records!r}, "train", channels="gray1", image_size=8, batch_size=4, augment=False, seed=0)
seen = []
for images, _, _ in s.experimental_distribute_dataset(ds):
    for local in s.experimental_local_results(images):
        seen += np.round(local.numpy().mean(axis=(1, 2, 3)) / 10).astype(int).tolist()
print(s.num_replicas_in_sync, json.dumps(sorted(seen)))
"""


def test_mirrored_strategy_sees_each_example_once_per_epoch(tmp_path):
    # Example i is a flat image of gray 10 * i, so its mean identifies it after resizing.
    flat = [np.full((16, 16), 10 * i, np.uint8) for i in range(10)]
    records = write_records(tmp_path, flat, [[1]] * 10, ["Finding"])
    # Logical devices are fixed when TensorFlow initialises, hence a fresh process.
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(MIRRORED.format(records=records))],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    replicas, seen = run.stdout.strip().splitlines()[-1].split(" ", 1)
    assert replicas == "2"
    assert json.loads(seen) == list(range(10))


def test_exclusive_classes_keeps_only_images_whose_findings_lie_within_the_chosen_classes(tmp_path):
    # NIH-like states over (Atelectasis, Effusion, Mass): S2 kept Atelectasis and Effusion images only.
    states = [[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 0, 1]]
    records = write_records(tmp_path, images(5, 16), states, ["Atelectasis", "Effusion", "Mass"])
    kept = make_dataset(records, "train", classes=["Atelectasis", "Effusion"], exclusive_classes=True,
                        image_size=16, batch_size=8, shuffle=False, deterministic=True)
    everything = make_dataset(records, "train", classes=["Atelectasis", "Effusion"], image_size=16, batch_size=8,
                              shuffle=False, deterministic=True)
    np.testing.assert_array_equal(every_example(kept)[1], [[1, 0], [1, 1], [0, 0]])
    assert len(every_example(everything)[1]) == 5
    positives, negatives = label_counts(records, "train", classes=["Atelectasis", "Effusion"], exclusive_classes=True)
    np.testing.assert_array_equal(positives, [2, 1])
    np.testing.assert_array_equal(negatives, [1, 2])
