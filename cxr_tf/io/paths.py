"""Image paths from label files: normalised, never allowed out of the image root; only regular files read."""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from pathlib import Path

_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class UnsafePath(ValueError):
    """A label-file path that is absolute or climbs out of the image root."""


class UnreadableFile(ValueError):
    """A file that is not read: ``str(err)`` is the reason (missing, not a regular file, too large...)."""


def relative_path(raw: str) -> str:
    """``raw`` as a normalised POSIX path relative to the image root.

    Backslashes (Windows-written CSVs) become slashes; ``a/./b`` becomes ``a/b``.

    Raises:
        UnsafePath: empty, NUL-containing, absolute (``/x``, ``C:\\x``) or escaping (``../x``, ``a/../../x``) paths.
    """
    text = str(raw).strip().replace("\\", "/")
    if not text:
        raise UnsafePath("empty path")
    if "\0" in text:
        raise UnsafePath("NUL byte in path")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafePath("absolute path not allowed; paths must be relative to the image root")
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../"):
        raise UnsafePath("path escapes the image root")
    return norm


def resolve(root: Path, relative: str) -> Path:
    """The file ``relative`` (already checked by ``relative_path``) under ``root``.

    Symlinks are followed and checked too, so a link cannot lead out of the root either.

    Raises:
        UnsafePath: the resolved path is outside ``root``, or a symbolic link loop.
    """
    root = root.resolve()
    try:
        target = (root / relative).resolve()
    except RuntimeError:  # pathlib's report of a symlink loop (Python < 3.13)
        raise UnsafePath("symbolic link loop") from None
    if target != root and root not in target.parents:
        raise UnsafePath("path escapes the image root (through a symbolic link)")
    return target


def read_regular_file(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` when it is a regular file of at most ``max_bytes`` bytes.

    Anything else is refused before a byte is read: a FIFO would block the reader forever, a link to
    ``/dev/zero`` never ends, and the size cap is checked from the file's metadata, so a 2 GB sparse
    file costs nothing.

    Raises:
        UnreadableFile: missing, not a regular file (directory, FIFO, device, socket), a symbolic link
            loop, a NUL byte in the path, unreadable, or larger than ``max_bytes``.
    """
    try:
        # O_NONBLOCK: opening a FIFO would wait for a writer; on a regular file it changes nothing.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UnreadableFile("missing file") from None
    except ValueError:  # os.open refuses an embedded NUL byte
        raise UnreadableFile("NUL byte in path") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnreadableFile("symbolic link loop") from None
        raise UnreadableFile(f"unreadable file ({err.strerror})") from None
    try:
        info = os.fstat(fd)
        for test, kind in _FILE_KINDS:
            if test(info.st_mode):
                raise UnreadableFile(f"not a regular file ({kind})")
        if info.st_size > max_bytes:
            raise UnreadableFile(f"file too large ({info.st_size} bytes; at most {max_bytes})")
        with open(fd, "rb", closefd=False) as fh:
            return fh.read(max_bytes + 1)
    except OSError as err:
        raise UnreadableFile(f"unreadable file ({err.strerror})") from None
    finally:
        os.close(fd)
