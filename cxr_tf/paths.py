"""Image paths from label files: normalised, and never allowed out of the image root."""

from __future__ import annotations

import posixpath
from pathlib import Path


class UnsafePath(ValueError):
    """A label-file path that is absolute or climbs out of the image root."""


def relative_path(raw: str) -> str:
    """``raw`` as a normalised POSIX path relative to the image root.

    Backslashes (Windows-written CSVs) become slashes; ``a/./b`` becomes ``a/b``.

    Raises:
        UnsafePath: empty, absolute (``/x``, ``C:\\x``) or escaping (``../x``, ``a/../../x``) paths.
    """
    text = str(raw).strip().replace("\\", "/")
    if not text:
        raise UnsafePath("empty path")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafePath("absolute path not allowed; paths must be relative to the image root")
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../"):
        raise UnsafePath("path escapes the image root")
    return norm


def resolve(root: Path, relative: str) -> Path:
    """The file ``relative`` (already checked by ``relative_path``) under ``root``.

    Symlinks are followed and checked too, so a link cannot lead out of the root either.
    """
    root = root.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise UnsafePath("path escapes the image root (through a symbolic link)")
    return target
