"""``--weights``: ImageNet from the Keras cache (never a silent hang offline) or an earlier model file / run."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, TypeVar

import keras

from cxr_tf import reporting
from cxr_tf.errors import UserError

log = reporting.logger("models")
T = TypeVar("T")


def imagenet_or_error(name: str, build: Callable[[], T]) -> T:
    """Run ``build`` (which loads ImageNet weights through Keras); a failed download is one clear line.

    Keras keeps downloaded weights in ``~/.keras/models/`` (``$KERAS_HOME/models``); offline, the file
    named in the error must be put there by hand.
    """
    try:
        return build()
    except Exception as err:  # keras.utils.get_file raises a bare Exception on a failed fetch
        found = re.search(r"URL fetch failure on (\S+):\s", str(err))
        if not found:
            raise
        url = found.group(1)
        cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
        raise UserError(f"--weights imagenet: {name}'s ImageNet weights are not in the Keras cache and cannot be "
                        f"downloaded here; put {url.rsplit('/', 1)[-1]} (from {url}) into {cache}, or use "
                        "--weights none or --weights PATH") from None


def load_path(model: keras.Model, path: str) -> list[str]:
    """Load weights by layer name from a ``.keras``/``.weights.h5`` file or a run directory (its ``best.keras``).

    Layers whose weights do not fit (a head for another number of classes) keep their initialisation
    and are reported; returns their names.
    """
    source = Path(path)
    if source.is_dir():
        source = source / "best.keras"
    if not source.exists():
        raise UserError(f"--weights {path}: no such file (expected none, imagenet, a .keras/.weights.h5 file "
                        "or a run directory holding best.keras)")
    if source.suffix == ".keras":
        from cxr_tf.training.runs import load_keras

        donor = load_keras(source, "--weights")
        weights = {layer.name: layer.get_weights() for layer in donor.layers}
    elif source.name.endswith(".weights.h5"):
        donor = keras.models.clone_model(model)
        donor.load_weights(source, skip_mismatch=True)
        weights = {layer.name: layer.get_weights() for layer in donor.layers}
    else:
        raise UserError(f"--weights {path}: expected a .keras or .weights.h5 file or a run directory")
    skipped = []
    for layer in model.layers:
        values = weights.get(layer.name)
        if values is None or [v.shape for v in values] != [w.shape for w in layer.get_weights()]:
            if layer.get_weights():
                skipped.append(layer.name)
            continue
        layer.set_weights(values)
    if skipped:
        log.info("--weights %s: kept the initialisation of %d layer(s) that do not match: %s",
                 path, len(skipped), ", ".join(skipped))
    return skipped
