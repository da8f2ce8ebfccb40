"""ImageNet weights from KerasHub presets, for the zoo networks Keras applications lacks (ResNet18/34, ViT-B/16).

S2, S3 and S4 fine-tuned ImageNet ResNet18/34 and ViT-B/16. KerasHub (``pip install -e .[hub]``, an
optional extra) loads them as presets: ``--weights imagenet`` on ``resnet18``/``resnet34``/``vit_base``
loads ``hf://timm/resnet18.tv_in1k``/``hf://timm/resnet34.tv_in1k`` (torchvision's weights, converted by
KerasHub) / ``vit_base_patch16_224_imagenet`` (downloaded once into KerasHub's cache), and
``--weights DIR`` a preset saved locally (``backbone.save_to_preset(DIR)``: a folder
with ``config.json``, ``metadata.json`` and the weights). The KerasHub backbone is only read: its weights
are copied into the zoo network built in code (its ``Backbone.from_hub``), so the layer names that
``--freeze-stages`` and Grad-CAM use stay the zoo's.

Examples:
    >>> import keras_hub  # doctest: +SKIP
    >>> keras_hub.models.Backbone.from_preset("hf://timm/resnet18.tv_in1k").save_to_preset("r18")  # doctest: +SKIP
    >>> build_model("resnet18", num_classes=3, weights="r18")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cxr_tf import reporting
from cxr_tf.errors import UserError

if TYPE_CHECKING:
    import keras

    from cxr_tf.models.zoo import Backbone

log = reporting.logger("models")
INSTALL = "pip install -e '.[hub]' (or pip install keras-hub safetensors)"
# Files save_to_preset writes beside the weights; a directory holding both is a preset, not a run.
PRESET_FILES = ("config.json", "metadata.json")


def is_preset_dir(weights: str) -> bool:
    """Whether ``--weights`` names a local KerasHub preset directory."""
    return weights not in ("", "none", "imagenet") and all((Path(weights) / name).is_file() for name in PRESET_FILES)


def load_preset(model: keras.Model, backbone: Backbone, preset: str, flag: str) -> None:
    """Copy the KerasHub preset ``preset`` (a name or a local directory) into ``model``, a zoo network of ``backbone``.

    ``flag`` is the ``--weights`` value the user gave (``imagenet`` or the directory), named in errors.

    Raises:
        UserError: KerasHub is not installed (one line with the install command), the preset cannot be
            loaded (offline: name the local-directory alternative), or it does not fit the network.
    """
    if backbone.from_hub is None:
        raise UserError(f"--weights {flag}: a KerasHub preset can be loaded into resnet18, resnet34 and the "
                        f"vit_* models, not {model.name}")
    try:
        import keras_hub
    except ImportError:
        raise UserError(f"--weights {flag}: {model.name}'s weights come from KerasHub, which is not "
                        f"installed; {INSTALL}") from None
    try:
        hub_backbone = keras_hub.models.Backbone.from_preset(preset)
    except Exception as err:  # network, cache and format errors all surface here
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"--weights {flag}: KerasHub could not load preset {preset!r} ({reason}); offline, "
                        "save it elsewhere with Backbone.from_preset(...).save_to_preset(DIR) and pass --weights DIR") \
            from None
    weights = {w.path: w.numpy() for w in hub_backbone.weights}
    try:
        unused = backbone.from_hub(model, weights)
    except (KeyError, ValueError) as err:
        raise UserError(f"--weights {flag}: the preset does not fit {model.name} at this --image-size "
                        f"({err}); it must be the same architecture (and, for a ViT, image size)") from None
    if unused:
        log.info("--weights %s: %d preset weight(s) unused: %s", flag, len(unused), ", ".join(unused[:5]))

