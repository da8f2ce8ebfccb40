"""The one reporting helper: library code reports progress and messages only through here.

Messages go through the ``cxr_tf`` logger (the CLI decides the format and level); progress bars
are tqdm bars on stderr that switch themselves off when stderr is not a terminal, so logs of
batch jobs stay readable.
"""

from __future__ import annotations

import logging
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

LOGGER_NAME = "cxr_tf"


def logger(name: str = "") -> logging.Logger:
    """The ``cxr_tf`` logger, or its child ``cxr_tf.<name>``."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


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
        disable=not sys.stderr.isatty(),
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


def configure(verbose: bool = False) -> None:
    """Send ``cxr_tf`` log records to stderr as plain lines (called once by the CLI)."""
    root = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
