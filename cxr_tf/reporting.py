"""The one reporting helper: library code reports progress and messages only through here.

Messages go through the ``cxr_tf`` logger (the CLI decides the format and level); progress bars
are tqdm bars on stderr that switch themselves off when stderr is not a terminal, so logs of
batch jobs stay readable.

How much a command says is its ``Verbosity`` (``--quiet`` / default / ``--verbose``), read with
``verbosity()``. It is stored as the level of the ``cxr_tf`` logger, so the logger and every other
reporter (progress bars, training log lines) always agree.
"""

from __future__ import annotations

import enum
import logging
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

LOGGER_NAME = "cxr_tf"


def logger(name: str = "") -> logging.Logger:
    """The ``cxr_tf`` logger, or its child ``cxr_tf.<name>``."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


class Verbosity(enum.IntEnum):
    """How much a command reports; ordered, so ``verbosity() >= Verbosity.NORMAL`` reads naturally.

    QUIET: warnings and errors only (``--quiet``); no progress bars or periodic lines.
    NORMAL: the default: results, progress, one line per stage.
    VERBOSE: also debug detail (``--verbose``).
    """

    QUIET = 0
    NORMAL = 1
    VERBOSE = 2


_LEVELS = {Verbosity.QUIET: logging.WARNING, Verbosity.NORMAL: logging.INFO, Verbosity.VERBOSE: logging.DEBUG}


def verbosity() -> Verbosity:
    """The current verbosity, as last set by ``configure`` (``NORMAL`` when never configured)."""
    level = logging.getLogger(LOGGER_NAME).level
    if level == logging.NOTSET:  # a library user who never called configure (a notebook, a script)
        return Verbosity.NORMAL
    if level <= logging.DEBUG:
        return Verbosity.VERBOSE
    return Verbosity.NORMAL if level <= logging.INFO else Verbosity.QUIET


def progress(
    items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it"
) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar showing the rate in ``unit``/s.

    The bar is drawn only on an interactive stderr; otherwise items pass straight through.
    """
    from tqdm.auto import tqdm

    yield from tqdm(
        items,
        total=total,
        desc=desc,
        unit=unit,
        disable=not sys.stderr.isatty() or verbosity() < Verbosity.NORMAL,
        dynamic_ncols=True,
    )


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when the handler was made
    (so redirections made later, by a caller or a test, are honoured)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure(level: Verbosity = Verbosity.NORMAL) -> None:
    """Send ``cxr_tf`` log records to stderr as plain lines, at ``level`` (the CLI calls this)."""
    root = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(_LEVELS[Verbosity(level)])
