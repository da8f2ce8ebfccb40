"""Shared plumbing of the ``python -m cxr_tf.<verb>`` commands.

A command module is thin: it parses its config dataclass (``cxr_tf.config``), calls the library
and prints the result. ``run`` turns every ``CxrError`` into one line on stderr and its exit code,
so a user mistake never shows a traceback. Every command's parser (``ArgumentParser``) has
``--version``, ``--verbose``/``--quiet`` and the ``--list-KIND`` flags of the things it names.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Sequence

from cxr_tf import __version__, import_hooks, reporting
from cxr_tf.errors import CxrError, UserError
from cxr_tf.stderr_redirect import stderr_to

_VERBOSITY = "verbosity"


class _ListAction(argparse.Action):
    """``--list-KIND``: print what KIND a flag can name (``cxr_tf.listing``) and exit, like ``--version``."""

    def __init__(self, option_strings: Sequence[str], dest: str, kind: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)
        self.kind = kind

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from cxr_tf import listing

        print(listing.format_entries(self.kind))
        parser.exit()


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose mistakes raise ``UserError`` (one line, exit 2), with the common flags.

    Args:
        lists: kinds of ``cxr_tf.listing.KINDS`` that get a ``--list-KIND`` flag.
        Other arguments are ``argparse.ArgumentParser``'s.

    Parsing applies ``--verbose``/``--quiet`` to ``cxr_tf.reporting`` (an absent flag leaves the level
    alone, so a command run by another, as the demo runs fit, keeps its caller's level).
    """

    def __init__(self, *args: Any, lists: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"cxr_tf {__version__}")
        loudness = self.add_mutually_exclusive_group()
        loudness.add_argument("-v", "--verbose", dest=_VERBOSITY, action="store_const", default=argparse.SUPPRESS,
                              const=reporting.Verbosity.VERBOSE, help="also report details (debug messages)")
        loudness.add_argument("-q", "--quiet", dest=_VERBOSITY, action="store_const", default=argparse.SUPPRESS,
                              const=reporting.Verbosity.QUIET,
                              help="report only warnings and errors (no progress bars or progress lines)")
        for kind in lists:
            self.add_argument(f"--list-{kind}", action=_ListAction, kind=kind, help=f"print the {kind} and exit")

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, rest = super().parse_known_args(args, namespace)
        level = vars(parsed).pop(_VERBOSITY, None)
        if level is not None:
            reporting.configure(level)
        return parsed, rest

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see --help)")


# --- TensorFlow start-up --------------------------------------------------------------------------------
# TensorFlow 2.21 prints C++ lines while its shared libraries load ("All log messages before
# absl::InitializeLog()...", oneDNN, "Could not find cuda drivers") whatever TF_CPP_MIN_LOG_LEVEL says,
# and an "E0000 ... failed call to cuInit" line on every machine without a GPU at level 2 and below.
# They read like failures and bury a command's own output, so the CLI hides them unless the user sets
# TF_CPP_MIN_LOG_LEVEL, and reports a GPU that TensorFlow cannot use itself (``_check_gpu``).


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the duration (C++ writes bypass ``sys.stderr``)."""
    with open(os.devnull, "w") as null, stderr_to(null):
        yield


def _nvidia_driver() -> str | None:
    """Evidence of an NVIDIA GPU on this machine (a driver file or device node), or ``None``."""
    for path in [Path("/proc/driver/nvidia/version"), *sorted(Path("/dev").glob("nvidia[0-9]*"))]:
        if path.exists():
            return str(path)
    return None


def _check_gpu() -> None:
    """Warn when this machine has an NVIDIA GPU that TensorFlow does not see (the one start-up problem
    that matters, and that the silenced C++ lines would otherwise have shown)."""
    driver = _nvidia_driver()
    if driver is None or os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        reporting.logger().warning(
            f"this machine has an NVIDIA GPU ({driver}) but TensorFlow found none, so it runs on the "
            "CPU; rerun with TF_CPP_MIN_LOG_LEVEL=0 to see why (often: pip install 'tensorflow[and-cuda]')")


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up lines for the rest of the process, unless the user set
    ``TF_CPP_MIN_LOG_LEVEL`` (then TensorFlow logs as they asked). A no-op once TensorFlow is loaded."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # 3 = errors hidden too: the cuInit line is an ERROR
    import_hooks.after_import("tensorflow", _check_gpu, around=_stderr_silenced)


def run(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` and map errors to exit codes: 0 ok, 1 data error, 2 user mistake.

    Returns the exit code; ``python -m`` entry points pass it to ``sys.exit``.
    """
    reporting.configure()
    quiet_tensorflow()
    try:
        code = main(list(sys.argv[1:] if argv is None else argv))
    except CxrError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)

