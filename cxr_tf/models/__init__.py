"""The model zoo: every network takes the stored gray image (0-255, one channel), makes its own input
channels (``layers.py``), carries its own preprocessing and returns logits.

``build_model(name, ...)`` is the one entry point; ``MODELS`` maps a ``--model`` name to its
``Backbone`` (how to build the feature extractor and which layer-name prefixes form its stages);
``HEADS`` maps a head name to its ``Head`` (``heads.py``: output units, logits -> probabilities).
Importing this package registers the input layers with Keras, so ``keras.saving.load_model`` reloads a
run's ``best.keras`` or an exported ``model.keras`` in safe mode without ``custom_objects``.
"""

from cxr_tf.models.heads import HEADS, Head
from cxr_tf.models.zoo import MODELS, Backbone, build_model
from cxr_tf.models import applications, cnn, layers, resnet, s4_cnn, vit  # noqa: F401,E402  (register backbones, layers)

__all__ = ["HEADS", "MODELS", "Backbone", "Head", "build_model"]
