"""The model zoo: every network takes 0-255 pixels, carries its own preprocessing and returns logits.

``build_model(name, ...)`` is the one entry point; ``MODELS`` maps a ``--model`` name to its
``Backbone`` (how to build the feature extractor and which layer-name prefixes form its stages).
"""

from cxr_tf.models.zoo import HEADS, MODELS, Backbone, build_model
from cxr_tf.models import applications, cnn, resnet, s4_cnn, vit  # noqa: F401,E402  (register their backbones)

__all__ = ["HEADS", "MODELS", "Backbone", "build_model"]
