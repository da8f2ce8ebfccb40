"""Strategies: logical CPU devices make MirroredStrategy run anywhere; bad specs are one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cxr_tf.errors import UserError
from cxr_tf.training import strategy

PROBE = """
from cxr_tf.training import strategy
strategy.configure_devices({devices!r})
s = strategy.make_strategy({name!r})
print(type(s).__name__, s.num_replicas_in_sync)
"""


@pytest.mark.parametrize("devices, name, expected", [
    ("cpu:2", "auto", "MirroredStrategy 2"),
    ("cpu:2", "mirrored", "MirroredStrategy 2"),
    ("cpu:2", "one_device", "OneDeviceStrategy 1"),
    ("", "auto", "OneDeviceStrategy 1"),
])
def test_strategy_by_name_over_logical_cpus(devices, name, expected):
    # Logical devices are fixed when TensorFlow initialises, so each case needs a fresh process.
    run = subprocess.run([sys.executable, "-c", PROBE.format(devices=devices, name=name)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == expected


@pytest.mark.parametrize("spec", ["cpu", "cpu:0", "tpu:2", "cpu:two"])
def test_malformed_device_spec_is_a_user_error(spec):
    with pytest.raises(UserError, match="--devices"):
        strategy.parse_devices(spec)


def test_multiworker_without_tf_config_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="TF_CONFIG"):
        strategy.make_strategy("multiworker")


def test_num_workers_counts_chief_and_workers_of_tf_config(monkeypatch):
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert strategy.num_workers() == 3
    monkeypatch.delenv("TF_CONFIG")
    assert strategy.num_workers() == 1


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(UserError, match="one_device"):
        strategy.make_strategy("tpu")
