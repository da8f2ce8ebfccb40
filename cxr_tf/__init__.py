"""cxr_tf: chest X-ray datasets to trained, evaluated, explainable Keras classifiers.

Importing the package is cheap on purpose (no TensorFlow): CLI start-up stays fast and
TensorFlow is imported only by the stages that run graphs. The Python API's two entry points are
attributes loaded on first use (PEP 562):

* ``cxr_tf.load(RUN_OR_EXPORT)`` -> a ``Predictor``; ``.predict(files or arrays)`` -> DataFrame
  (``cxr_tf.api``).
* ``cxr_tf.make_dataset(records, split, ...)`` -> ``tf.data.Dataset`` (``cxr_tf.pipeline``).

cxr_tf's Keras objects (the models' input layers) are registered as soon as Keras is imported, before
or after ``cxr_tf``, so ``keras.saving.load_model`` reads a run's ``best.keras`` or an exported
``.keras`` model (safe mode, no ``custom_objects``) after ``import cxr_tf``.
"""

from cxr_tf import import_hooks as _import_hooks

__version__ = "0.1.0"
__all__ = ["load", "make_dataset"]


def _register_keras_objects() -> None:
    import cxr_tf.models.layers  # noqa: F401  (registers the input layers with Keras)


_import_hooks.after_import("keras", _register_keras_objects)


def __getattr__(name: str):  # noqa: ANN202
    if name == "load":
        from cxr_tf.api import load

        return load
    if name == "make_dataset":
        from cxr_tf.pipeline import make_dataset

        return make_dataset
    raise AttributeError(f"module 'cxr_tf' has no attribute {name!r}")
