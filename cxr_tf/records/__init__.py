"""Sharded TFRecords: one ``tf.train.Example`` per image plus ``dataset.json``."""
