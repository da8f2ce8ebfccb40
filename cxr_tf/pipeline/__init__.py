"""The input pipeline: records -> ``tf.data`` with label policy, enhancement, augmentation, noise, balancing."""

from cxr_tf.pipeline.dataset import make_dataset

__all__ = ["make_dataset"]
