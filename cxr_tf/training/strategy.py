"""Distribution strategies: one device, MirroredStrategy over local devices, MultiWorkerMirrored via TF_CONFIG.

``--devices cpu:N`` splits the host CPU into N logical devices, so MirroredStrategy (and every code path
that depends on more than one replica) runs on any laptop and in CI. Logical devices can only be set
before TensorFlow initialises its runtime, so ``configure_devices`` must run before any op.

A multi-worker run is the same command on every machine, each with its own ``TF_CONFIG`` (TensorFlow's
cluster runtime). All workers train in lockstep; only the chief (``is_chief``) keeps a run directory, the
others write theirs to a ``scratch_dir`` they remove at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cxr_tf.errors import UserError
from cxr_tf.registry import Registry

# --strategy NAME -> a function building the tf.distribute.Strategy.
STRATEGIES: Registry[Callable[[], Any]] = Registry("strategy")


def parse_devices(spec: str) -> tuple[str, int]:
    """``"cpu:2"`` -> ``("CPU", 2)``; ``""`` -> ``("", 0)`` (use the physical devices as they are)."""
    if not spec:
        return "", 0
    kind, _, count = spec.partition(":")
    if kind.lower() not in ("cpu", "gpu") or not count.isdigit() or int(count) < 1:
        raise UserError(f"--devices {spec!r}: expected cpu:N or gpu:N with N >= 1, e.g. cpu:2")
    return kind.upper(), int(count)


def configure_devices(spec: str) -> None:
    """Split the first physical CPU (or GPU) into N logical devices; ``""`` leaves devices alone.

    Raises:
        UserError: malformed spec, or TensorFlow already initialised (logical devices are fixed then).
    """
    kind, count = parse_devices(spec)
    if not count:
        return
    import tensorflow as tf

    physical = tf.config.list_physical_devices(kind)
    if not physical:
        raise UserError(f"--devices {spec}: this machine has no {kind}")
    config = [tf.config.LogicalDeviceConfiguration(**({"memory_limit": 1024} if kind == "GPU" else {}))
              for _ in range(count)]
    try:
        tf.config.set_logical_device_configuration(physical[0], config)
    except RuntimeError:
        raise UserError(f"--devices {spec}: TensorFlow was initialised already; set devices first") from None


@STRATEGIES.register("one_device")
def _one_device() -> Any:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


@STRATEGIES.register("mirrored")
def _mirrored() -> Any:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices)


def _tf_config() -> dict[str, Any]:
    """``TF_CONFIG`` as a dict, ``{}`` when unset."""
    if "TF_CONFIG" not in os.environ:
        return {}
    try:
        parsed = json.loads(os.environ["TF_CONFIG"])
    except json.JSONDecodeError as err:
        raise UserError(f"TF_CONFIG is not valid JSON ({err})") from None
    if not isinstance(parsed, dict):
        raise UserError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    return parsed


def task() -> tuple[str | None, int]:
    """This process's ``(task type, index)`` in the ``TF_CONFIG`` cluster; ``(None, 0)`` outside one."""
    spec = _tf_config().get("task", {})
    return spec.get("type"), int(spec.get("index", 0))


def num_workers() -> int:
    """Machines of this process's ``TF_CONFIG`` cluster (chief + workers), 1 outside one; the input
    pipeline's sharding depends on it (``make_dataset(workers=...)``)."""
    cluster = _tf_config().get("cluster", {})
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def is_chief() -> bool:
    """Whether this process writes the run directory: always outside a cluster; inside one, the task of
    type ``chief``, or worker 0 when the cluster has no chief (TensorFlow's own convention)."""
    kind, index = task()
    cluster = _tf_config().get("cluster", {})
    if kind is None or kind == "chief":
        return True
    return kind == "worker" and index == 0 and not cluster.get("chief")


def scratch_dir(run: Path) -> Path:
    """Where this process writes its run files: ``run`` on the chief, a fresh temporary directory elsewhere.

    Every worker runs the same callbacks, saving included, so that any collective op inside them has all
    workers taking part (TensorFlow's multi-worker Keras tutorial, "Model saving and loading": all workers
    save, non-chief workers to a temporary directory); only the chief's files are kept. Remove a
    non-chief's directory with ``remove_scratch`` when the run ends.
    """
    if is_chief():
        return run
    kind, index = task()
    return Path(tempfile.mkdtemp(prefix=f"cxr_tf-{kind}{index}-"))


def remove_scratch(scratch: Path, run: Path) -> None:
    """Delete a non-chief's ``scratch_dir``; the chief's run directory is left alone."""
    if scratch != run:
        shutil.rmtree(scratch, ignore_errors=True)


@STRATEGIES.register("multiworker")
def _multiworker() -> Any:
    import tensorflow as tf

    if not _tf_config():
        raise UserError("--strategy multiworker needs the TF_CONFIG environment variable "
                        "(cluster and task of this worker; see README, 'Training on several machines')")

    class KerasMultiWorkerMirrored(tf.distribute.MultiWorkerMirroredStrategy):
        """``reduce`` as Keras 3's ``fit`` calls it (keras-team/keras#20585), which the collective strategy rejects.

        Keras reduces the first ``(images, labels, weights)`` batch as one nest to build the model ("unsupported
        type PerReplica": the collective ``reduce`` takes one value, ``MirroredStrategy``'s a nest), and
        reduces the scalar step logs with ``axis=0`` ("Invalid reduction dimension 0"): scalars are reduced
        across replicas only.
        """

        def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
            parent = super().reduce

            def one(v: Any) -> Any:
                scalar = self.experimental_local_results(v)[0].shape.rank == 0
                return parent(reduce_op, v, None if scalar else axis)

            return tf.nest.map_structure(one, value)

    return KerasMultiWorkerMirrored()


@STRATEGIES.register("auto")
def _auto() -> Any:
    import tensorflow as tf

    if _tf_config():
        return _multiworker()
    replicas = len(tf.config.list_logical_devices("GPU")) or len(tf.config.list_logical_devices("CPU"))
    # MirroredStrategy whenever there is more than one device to mirror over (GPUs, or logical CPUs
    # from --devices); one device otherwise, which avoids all-reduce overhead.
    return _mirrored() if tf.config.list_logical_devices("GPU") or replicas > 1 else _one_device()


def make_strategy(name: str = "auto") -> Any:
    """A ``tf.distribute.Strategy`` by name.

    ``auto``: MultiWorkerMirrored when ``TF_CONFIG`` is set, Mirrored when there are GPUs or several
    logical CPUs, else one device. Build the model, optimizer and metrics inside ``strategy.scope()``;
    the global batch is the per-replica batch x ``strategy.num_replicas_in_sync``.
    """
    return STRATEGIES.get(name, "--strategy")()


def set_mixed_precision(enabled: bool) -> str:
    """Turn Keras mixed precision on (float16 on GPU, bfloat16 on CPU); returns the policy name.

    Keras keeps the policy process-wide; a command sets it once, before building its model.
    """
    import keras
    import tensorflow as tf

    policy = "float32"
    if enabled:
        policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    return policy
