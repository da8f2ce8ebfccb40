"""Output-directory claims: a directory belongs to the run or build whose config it holds.

``build_records --out``, ``fit --out`` and ``synth --out`` follow one rule. A command re-run with the
same config (``Owner.ignore`` aside) resumes or finds its work done; a different config is refused, or,
under ``--overwrite`` where the command offers it, the earlier output is deleted: only the files the
command writes (``Owner.writes``), never a user's other files. ``hold`` keeps a second process out of
a directory being written. Local paths and URLs (``gs://``...: through ``tf.io.gfile``) alike.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from cxr_tf.errors import UserError


@dataclass(frozen=True)
class Owner:
    """A command that writes output directories, and how it marks one as its own.

    Attributes:
        command: the command, as messages name it (``build_records``).
        config_file: where the directory's config is saved, relative to it (``.toml`` or ``.json``).
        ignore: config keys that do not change what is written (placement, worker count).
        writes: ``(out, entry name) -> bool``, true for a top-level entry the command writes; given, the
            command offers ``--overwrite``, which deletes an earlier output made only of such entries.
            ``None``: the command never deletes anything.
        adopt_unmarked: a non-empty directory without ``config_file`` is taken as new (``fit``, whose
            run directory may be made beforehand); otherwise it is refused.
        lock: an entry that ``hold`` creates and locks, not part of the output.
    """

    command: str
    config_file: str
    ignore: frozenset[str] = frozenset()
    writes: Callable[[str, str], bool] | None = None
    adopt_unmarked: bool = False
    lock: str | None = None


def claim(out: str, config: Mapping[str, Any], owner: Owner, overwrite: bool = False) -> bool:
    """Decide whether ``out`` may receive the output of ``config``; the caller then saves the config.

    Args:
        out: the output directory (local path or URL); it need not exist.
        config: the run's config as saved in ``owner.config_file`` (plain TOML/JSON values).
        owner: the command writing ``out``.
        overwrite: delete an earlier output of the command with another config (only with ``owner.writes``).

    Returns:
        True when ``out`` already holds this config (resume, or the work is done); False when ``out``
        is missing, empty, adopted, or was emptied under ``overwrite``.

    Raises:
        UserError: ``out`` is a file; it holds another config (without ``overwrite``), an entry the
            command did not write, or (unless ``adopt_unmarked``) anything without a saved config.
    """
    require_directory(out)
    present = sorted(name for name in _listdir(out) if name != owner.lock)
    if not present:
        return False
    saved = read_config(_join(out, owner.config_file))
    if saved is not None:
        changed = differences(saved, config, owner.ignore)
        if not changed:
            return True
    elif owner.writes is None:
        if owner.adopt_unmarked:
            return False
        raise UserError(f"--out {out} is not empty and holds no {owner.config_file}, so it is not a {owner.command} "
                        "output; choose an empty or new --out")
    if owner.writes is not None:
        foreign = [name for name in present if not owner.writes(out, name)]
        if foreign:
            raise UserError(f"--out {out} holds {foreign[0]!r}, which {owner.command} did not write; move it away or "
                            f"choose another --out (--overwrite replaces only an earlier {owner.command} output)")
    if not (overwrite and owner.writes is not None):
        # A fingerprint (build_records) is a digest: naming it would not help the user.
        shown = [key for key in changed if key != "fingerprint"] if saved is not None else []
        keys = f" ({', '.join(shown)})" if shown else ""
        offer = ", pass --overwrite to replace it" if owner.writes is not None else ""
        raise UserError(f"--out {out} holds another {owner.command} run with other settings{keys}; re-run with the "
                        f"same settings to resume{offer}, or choose another --out")
    for name in present:
        _remove_tree(_join(out, name))
    return False


def differences(saved: Mapping[str, Any], config: Mapping[str, Any], ignore: frozenset[str] = frozenset()) -> list[str]:
    """The keys, sorted, whose values differ between two configs (a key missing on one side differs)."""
    keys = (set(saved) | set(config)) - ignore
    return sorted(key for key in keys if saved.get(key) != config.get(key))


def read_config(path: str) -> dict[str, Any] | None:
    """A saved config (TOML, or JSON for a ``.json`` path), or ``None`` when there is none.

    Raises:
        UserError: the file is not valid TOML/JSON (naming it).
    """
    if not _exists(path):
        return None
    text = _read_text(path)
    try:
        return json.loads(text) if path.endswith(".json") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise UserError(f"{path}: unreadable saved config ({err}); remove its directory or choose another "
                        "--out") from None


def require_directory(out: str, flag: str = "--out") -> None:
    """Raise ``UserError`` when local ``out``, or its nearest existing parent, is not a directory (a file
    there would fail later with an ``OSError`` traceback). URLs (``gs://``...) are left to their store."""
    if _is_url(out):
        return
    for path in (Path(out), *Path(out).parents):
        if path.exists():
            if not path.is_dir():
                raise UserError(f"{flag} {out}: {path} is a file, not a directory; choose another {flag}")
            return


@contextlib.contextmanager
def hold(out: str, owner: Owner) -> Iterator[None]:
    """Lock the local directory ``out`` (created) for one process of ``owner`` (``fcntl.flock`` on
    ``owner.lock``, released by the kernel even when the process is killed), so that a second one fails
    at once instead of interleaving its files with the first's. URLs are not locked.

    Raises:
        UserError: another process holds the lock.
    """
    if _is_url(out) or owner.lock is None:
        yield
        return
    require_directory(out)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    with open(target / owner.lock, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"--out {out} is being written by another {owner.command} (it holds {owner.lock}); "
                            "wait for it to finish or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _is_url(path: str) -> bool:
    return "://" in path


def _join(out: str, name: str) -> str:
    return f"{out.rstrip('/')}/{name}" if _is_url(out) else os.path.join(out, name)


def _listdir(out: str) -> list[str]:
    if _is_url(out):
        import tensorflow as tf

        return [name.rstrip("/") for name in tf.io.gfile.listdir(out)] if tf.io.gfile.isdir(out) else []
    return os.listdir(out) if os.path.isdir(out) else []


def _exists(path: str) -> bool:
    if _is_url(path):
        import tensorflow as tf

        return bool(tf.io.gfile.exists(path))
    return os.path.exists(path)


def _read_text(path: str) -> str:
    if _is_url(path):
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "r") as fh:
            return fh.read()
    return Path(path).read_text()


def _remove_tree(path: str) -> None:
    if _is_url(path):
        import tensorflow as tf

        (tf.io.gfile.rmtree if tf.io.gfile.isdir(path) else tf.io.gfile.remove)(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
