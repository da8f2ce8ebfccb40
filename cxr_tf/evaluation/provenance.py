"""What produced a result: software versions, code commit, device, date and the exact command.

CLAIM (item 24-26) and TRIPOD-AI ask that a reported model can be traced to the code and the command
that made it. ``fit`` stores ``provenance.json`` in the run directory and ``evaluate`` stores the same
fields in ``metrics.json["provenance"]``; the report shows both.
"""

from __future__ import annotations

import datetime
import json
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Any, Sequence

import cxr_tf

FILE = "provenance.json"


def command(module: str, argv: Sequence[str] | None) -> str | None:
    """``python -m cxr_tf.<module> <argv>``, quoted so that it can be pasted into a shell; None without argv
    (a library call)."""
    return None if argv is None else f"python -m cxr_tf.{module} {shlex.join(argv)}".rstrip()


def git_commit() -> str | None:
    """The commit of the cxr_tf checkout (``+dirty`` with uncommitted changes), None outside a git checkout."""
    root = Path(cxr_tf.__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def device() -> str:
    """The accelerators TensorFlow sees (``GPU: 2``), else ``CPU`` with the machine's processor name."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU: {len(gpus)}"
    return f"CPU ({platform.processor() or platform.machine()})"


def environment(module: str, argv: Sequence[str] | None) -> dict[str, Any]:
    """The provenance of a command run now: ``command``, ``cxr_tf``, ``tensorflow``, ``keras``, ``python``,
    ``git_commit`` (None when unknown), ``device``, ``date`` (UTC, ISO 8601)."""
    import keras
    import tensorflow as tf

    return {"command": command(module, argv), "cxr_tf": cxr_tf.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "python": platform.python_version(), "git_commit": git_commit(),
            "device": device(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def record(directory: str | Path, module: str, argv: Sequence[str]) -> Path:
    """Write ``environment(module, argv)`` to ``directory/provenance.json`` (atomically); returns its path."""
    from cxr_tf.io import atomic

    path = Path(directory) / FILE
    atomic.write_text(str(path), json.dumps(environment(module, argv), indent=2))
    return path


def load(directory: str | Path) -> dict[str, Any] | None:
    """``directory/provenance.json``, or None for a run made before fit recorded it."""
    path = Path(directory) / FILE
    return json.loads(path.read_text()) if path.exists() else None
