"""label_counts: what a class-weighted loss sees, after propagation and the uncertainty/blank policy."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_tf.pipeline.counts import label_counts
from tests.records_util import write_records

CLASSES = ["Cardiomegaly", "Enlarged Cardiomediastinum", "Edema"]
TREE = {"Cardiomegaly": "Enlarged Cardiomediastinum"}
# Cardiomegaly states: positive, negative, uncertain, blank; parent always blank; Edema 1, 0, -1, -2.
STATES = [[1, -2, 1], [0, -2, 0], [-1, -2, -1], [-2, -2, -2]]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    images = [np.full((16, 16), 100, np.uint8)] * len(STATES)
    return write_records(tmp_path_factory.mktemp("r"), images, STATES, CLASSES, label_tree=TREE)


@pytest.mark.parametrize("uncertainty, blank, propagate, positives, negatives", [
    ("ones", "zeros", "none", [2, 0, 2], [2, 4, 2]),
    ("zeros", "zeros", "none", [1, 0, 1], [3, 4, 3]),
    ("ignore", "zeros", "none", [1, 0, 1], [2, 4, 2]),
    ("ignore", "ignore", "none", [1, 0, 1], [1, 0, 1]),
    ("ones", "zeros", "positive", [2, 1, 2], [2, 3, 2]),
    ("ones", "zeros", "uncertain", [2, 2, 2], [2, 2, 2]),
    ("multiclass", "zeros", "none", [1, 0, 1], [3, 4, 3]),
])
def test_counts_follow_the_label_policy(records, uncertainty, blank, propagate, positives, negatives):
    pos, neg = label_counts(records, "train", uncertainty=uncertainty, blank=blank, propagate_parents=propagate)
    np.testing.assert_array_equal(pos, positives)
    np.testing.assert_array_equal(neg, negatives)


def test_counts_of_a_class_subset_come_in_its_order(records):
    pos, neg = label_counts(records, "train", classes=["Edema", "Cardiomegaly"], uncertainty="zeros")
    np.testing.assert_array_equal(pos, [1, 1])
    np.testing.assert_array_equal(neg, [3, 3])
