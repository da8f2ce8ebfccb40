"""File descriptor 2 pointed elsewhere for a while: C and C++ libraries (TensorFlow's start-up, libpng,
libjpeg) write there directly, past ``sys.stderr``, so silencing or capturing them needs the descriptor."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import IO, Iterator


@contextlib.contextmanager
def stderr_to(file: IO) -> Iterator[None]:
    """Descriptor 2 writes to ``file`` (an open file with a descriptor) for the duration, then is restored."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
