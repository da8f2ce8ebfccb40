"""``fit --deterministic``: the same command run twice gives bit-identical weights on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import phantom_fit_args

from cxr_tf import cli, fit
from cxr_tf.training import runs


def weights(run: Path) -> list[np.ndarray]:
    return [np.asarray(w) for w in runs.load(run).load_model().get_weights()]


@pytest.mark.slow
def test_two_deterministic_runs_give_bit_identical_weights(phantom_records, tmp_path):
    # Shuffling, augmentation and a parallel input pipeline are all on: each is a source of run-to-run drift.
    flags = ["--epochs", "2", "--steps-per-epoch", "4", "--augment", "--deterministic", "--image-size", "48"]
    for name in ("a", "b"):
        assert cli.run(fit.main, phantom_fit_args(phantom_records, tmp_path / name, *flags)) == 0
    first, second = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert len(first) == len(second) > 0
    assert all(np.array_equal(x, y) for x, y in zip(first, second))
