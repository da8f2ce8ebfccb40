"""cxr_tf: chest X-ray datasets to trained, evaluated, explainable Keras classifiers.

Importing the package is cheap on purpose (no TensorFlow): CLI start-up stays fast and
TensorFlow is imported only by the stages that run graphs. The Python API's two entry points are
attributes loaded on first use (PEP 562):

* ``cxr_tf.load(RUN_OR_EXPORT)`` -> a ``Predictor``; ``.predict(files or arrays)`` -> DataFrame
  (``cxr_tf.api``).
* ``cxr_tf.make_dataset(records, split, ...)`` -> ``tf.data.Dataset`` (``cxr_tf.pipeline``).
"""

__version__ = "0.1.0"
__all__ = ["load", "make_dataset"]


def __getattr__(name: str):  # noqa: ANN202
    if name == "load":
        from cxr_tf.api import load

        return load
    if name == "make_dataset":
        from cxr_tf.pipeline import make_dataset

        return make_dataset
    raise AttributeError(f"module 'cxr_tf' has no attribute {name!r}")
