"""Shared plumbing of the ``python -m cxr_tf.<verb>`` commands.

A command module is thin: it parses its config dataclass (``cxr_tf.config``), calls the library
and prints the result. ``run`` turns every ``CxrError`` into one line on stderr and its exit code,
so a user mistake never shows a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, NoReturn, Sequence

from cxr_tf import reporting
from cxr_tf.errors import CxrError, UserError

log = reporting.logger("cli")


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose mistakes raise ``UserError`` (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see --help)")


def run(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` and map errors to exit codes: 0 ok, 1 data error, 2 user mistake.

    Returns the exit code; ``python -m`` entry points pass it to ``sys.exit``.
    """
    reporting.configure()
    # TensorFlow's C++ start-up lines (CUDA probing, CPU features) bury a command's own output; an
    # environment that sets TF_CPP_MIN_LOG_LEVEL keeps its choice.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        code = main(list(sys.argv[1:] if argv is None else argv))
    except CxrError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


def worker_count(requested: int, flag: str = "--workers") -> int:
    """Processes for a ``--workers`` flag: 0 means one per core this process may use; more than that
    is capped there, with a log line (a thousand processes on two cores only thrash)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if requested > cores:
        log.warning("%s %d: capped at %d, the cores this machine gives the job", flag, requested, cores)
    return min(requested, cores) if requested else cores
