"""cxr_tf: chest X-ray datasets to trained, evaluated, explainable Keras classifiers.

Importing the package is cheap on purpose (no TensorFlow): CLI start-up stays fast and
TensorFlow is imported only by the stages that run graphs.
"""

__version__ = "0.1.0"
