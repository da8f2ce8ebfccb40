"""Run code right after a module is first imported, whoever imports it (a one-shot ``sys.meta_path`` hook).

Two things in cxr_tf must happen when a heavy library loads, not before (importing it up front would
cost every command seconds) and not later (the user's own import is the moment that matters):

* ``tensorflow``: its C++ start-up lines are silenced while it loads, then the GPU is checked (``cli``).
* ``keras``: cxr_tf's Keras objects (the models' input layers) are registered, so that
  ``keras.saving.load_model`` reads a cxr_tf ``.keras`` file after a plain ``import cxr_tf`` (Keras
  imports only its own packages while deserialising, never ``cxr_tf.models``).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys
from typing import Any, Callable, ContextManager


class _AfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Installed first on ``sys.meta_path``; on the import of ``name`` it removes itself, finds the real
    spec and wraps only its loader's ``exec_module``: ``around()`` holds while the module executes, then
    ``then()`` runs."""

    def __init__(self, name: str, then: Callable[[], None], around: Callable[[], ContextManager]) -> None:
        self.name, self.then, self.around = name, then, around
        self._loader: Any = None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return None
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__spec__.loader = module.__loader__ = self._loader
        with self.around():
            self._loader.exec_module(module)
        self.then()


def after_import(name: str, then: Callable[[], None],
                 around: Callable[[], ContextManager] = contextlib.nullcontext) -> None:
    """Call ``then()`` once module ``name`` is imported: at once if it already is, else right after its
    first import (with ``around()`` held while it loads). Installing the same hook twice is a no-op."""
    if name in sys.modules:
        then()
        return
    if not any(isinstance(f, _AfterImport) and f.name == name and f.then == then for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, then, around))
