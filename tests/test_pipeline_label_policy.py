"""Label policies: every raw state x uncertainty policy x blank policy x parent propagation, by hand."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from cxr_tf.errors import UserError
from cxr_tf.pipeline import label_policy

STATES = {"positive": 1, "negative": 0, "uncertain": -1, "blank": -2}
NEG, POS, UNC = [1, 0, 0], [0, 1, 0], [0, 0, 1]

# (uncertainty, blank) -> {state: (label, weight)}, written out by hand from the CheXpert paper's policies.
EXPECTED = {
    ("ones", "zeros"): {"positive": (1, 1), "negative": (0, 1), "uncertain": (1, 1), "blank": (0, 1)},
    ("ones", "ignore"): {"positive": (1, 1), "negative": (0, 1), "uncertain": (1, 1), "blank": (0, 0)},
    ("zeros", "zeros"): {"positive": (1, 1), "negative": (0, 1), "uncertain": (0, 1), "blank": (0, 1)},
    ("zeros", "ignore"): {"positive": (1, 1), "negative": (0, 1), "uncertain": (0, 1), "blank": (0, 0)},
    ("ignore", "zeros"): {"positive": (1, 1), "negative": (0, 1), "uncertain": (0, 0), "blank": (0, 1)},
    ("ignore", "ignore"): {"positive": (1, 1), "negative": (0, 1), "uncertain": (0, 0), "blank": (0, 0)},
    ("multiclass", "zeros"): {"positive": (POS, 1), "negative": (NEG, 1), "uncertain": (UNC, 1), "blank": (NEG, 1)},
    ("multiclass", "ignore"): {"positive": (POS, 1), "negative": (NEG, 1), "uncertain": (UNC, 1), "blank": (NEG, 0)},
}
# Child states that make the parent positive, per propagation mode.
TRIGGERS = {"none": (), "positive": ("positive",), "uncertain": ("positive", "uncertain")}


@pytest.mark.parametrize("uncertainty, blank", list(EXPECTED))
@pytest.mark.parametrize("state", list(STATES))
def test_policy_maps_each_state_to_its_label_and_weight(uncertainty, blank, state):
    label, weight = label_policy.apply_policy(tf.constant([STATES[state]], tf.int64), uncertainty, blank)
    want_label, want_weight = EXPECTED[uncertainty, blank][state]
    np.testing.assert_array_equal(label.numpy(), [want_label])
    np.testing.assert_array_equal(weight.numpy(), [want_weight])


@pytest.mark.parametrize("uncertainty, blank", list(EXPECTED))
@pytest.mark.parametrize("mode", list(TRIGGERS))
@pytest.mark.parametrize("child", list(STATES))
def test_parent_propagation_then_policy(mode, child, uncertainty, blank):
    ancestors = label_policy.ancestor_matrix(["Child", "Parent"], {"Child": "Parent"})
    for parent in STATES:
        raw = tf.constant([STATES[child], STATES[parent]], tf.int64)
        label, weight = label_policy.apply_policy(label_policy.propagate(raw, ancestors, mode), uncertainty, blank)
        parent_after = "positive" if child in TRIGGERS[mode] else parent
        expected = EXPECTED[uncertainty, blank]
        np.testing.assert_array_equal(label.numpy(), [expected[child][0], expected[parent_after][0]])
        np.testing.assert_array_equal(weight.numpy(), [expected[child][1], expected[parent_after][1]])


def test_propagation_reaches_grandparents_past_unrecorded_classes():
    # CheXpert: Pneumonia -> Consolidation -> Lung Opacity; Consolidation not among the recorded classes.
    tree = {"Pneumonia": "Consolidation", "Consolidation": "Lung Opacity"}
    ancestors = label_policy.ancestor_matrix(["Pneumonia", "Lung Opacity", "Edema"], tree)
    out = label_policy.propagate(tf.constant([1, 0, 0], tf.int64), ancestors, "positive")
    np.testing.assert_array_equal(out.numpy(), [1, 1, 0])


def test_propagation_never_lowers_a_parent_or_touches_children():
    ancestors = label_policy.ancestor_matrix(["Child", "Parent"], {"Child": "Parent"})
    out = label_policy.propagate(tf.constant([0, 1], tf.int64), ancestors, "uncertain")
    np.testing.assert_array_equal(out.numpy(), [0, 1])


@pytest.mark.parametrize("uncertainty, blank, message", [
    ("u-ones", "zeros", "uncertainty: unknown uncertainty policy 'u-ones' (did you mean 'ones'?); "
                        "valid: ones, zeros, ignore, multiclass"),
    ("ones", "negative", "blank: unknown blank policy 'negative'; valid: zeros, ignore"),
])
def test_unknown_policy_names_the_flag_and_choices(uncertainty, blank, message):
    with pytest.raises(UserError) as err:
        label_policy.policy_tables(uncertainty, blank)
    assert str(err.value) == message
