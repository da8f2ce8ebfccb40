"""Atomic writes: a reader sees the old file (or directory) or the whole new one, never a part.

Everything is written under a temporary name beside its destination (same directory, so the final
``rename`` stays on one file system and is atomic) and renamed when complete; a failed write removes
its temporary. A killed process cannot clean up: ``remove_partials`` and ``staged_directory`` remove
what an earlier, killed writer of the same destination left. URLs (``gs://``, ``s3://``) go through
``tf.io.gfile``; local paths need no TensorFlow (phantom-drawing workers never import it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, TypeVar

from cxr_tf.errors import DataError

PARTIAL = ".partial"  # suffix of a file being written

PathT = TypeVar("PathT", str, Path)


@contextlib.contextmanager
def replacing(path: PathT, partial: PathT | None = None) -> Iterator[PathT]:
    """Yield a temporary path to write; when the block completes it is renamed to ``path``.

    Args:
        path: the destination (local path or URL); an existing file there is replaced.
        partial: the temporary (default ``path + ".partial"``), in ``path``'s directory.

    On an exception the temporary is removed and the destination left as it was.
    """
    temporary = partial if partial is not None else type(path)(f"{path}{PARTIAL}")
    try:
        yield temporary
    except BaseException:
        _remove(str(temporary))
        raise
    if _is_url(str(path)):
        import tensorflow as tf

        tf.io.gfile.rename(str(temporary), str(path), overwrite=True)
    else:
        os.replace(temporary, path)


def write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` (local or URL) atomically.

    Raises:
        DataError: the write failed (disk full, ``ulimit -f`` reached), in one line (see ``writing``).
    """
    import tensorflow as tf

    with replacing(path) as partial, writing(partial), tf.io.gfile.GFile(partial, "w") as fh:
        fh.write(text)


def hidden_partial(path: Path) -> Path:
    """``dir/.name.<pid>.partial``: the temporary of a local file that several processes may write."""
    return path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to the local file ``path`` (parents created) atomically, through ``hidden_partial``;
    ``remove_partials`` clears what a killed writer left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, hidden_partial(path)) as partial:
        partial.write_bytes(data)


def remove_partials(root: Path) -> None:
    """Delete the ``hidden_partial`` files below ``root``: left by a killed run, never complete."""
    for partial in root.rglob(f".*{PARTIAL}"):
        if partial.is_file():
            partial.unlink()


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Turn a failed write of ``path`` (disk full, ``ulimit -f`` reached) into one ``DataError`` line;
    what is finished stays."""
    import tensorflow as tf

    try:
        yield
    except (OSError, tf.errors.OpError) as err:
        reason = getattr(err, "message", None) or getattr(err, "strerror", None) or str(err)
        raise DataError(f"{path}: cannot write ({reason.rsplit('; ', 1)[-1]}); finished shards are kept: free disk "
                        "space or raise the file size limit (ulimit -f) and re-run the same command") from None


@contextlib.contextmanager
def staged_directory(out: Path) -> Iterator[Path]:
    """Yield an empty staging directory beside ``out``; when the block completes it becomes ``out``.

    An existing ``out`` is replaced (a directory cannot be renamed over a non-empty one, so it steps
    aside as ``.<name>.old-*`` first). The staging directory (``.<name>.partial-*``) is removed whatever
    happens, and what a killed writer of ``out`` left (its staging, the directory it was replacing) is
    removed before starting; other destinations' leftovers are not touched.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*out.parent.glob(f".{out.name}{PARTIAL}-*"), *out.parent.glob(f".{out.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL}-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the result from other users of a shared folder
    try:
        yield staging
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _is_url(path: str) -> bool:
    return "://" in path


def _remove(path: str) -> None:
    """Best-effort removal of a temporary (it may never have been created)."""
    if _is_url(path):
        import tensorflow as tf

        with contextlib.suppress(tf.errors.OpError):
            tf.io.gfile.remove(path)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)
