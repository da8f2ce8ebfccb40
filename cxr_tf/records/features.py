"""Feature keys of a cxr_tf record, shared by the writer (build_records) and the reader (pipeline).

One ``tf.train.Example`` per image:

=========================  =======  ==========================================================
key                        type     meaning
=========================  =======  ==========================================================
``image/encoded``          bytes    8-bit gray PNG or JPEG at the stored size
``image/format``           bytes    ``png`` or ``jpeg``
``image/height``/``width`` int64    stored size, pixels
``image/original_height``  int64    size of the source image before resizing, pixels
``image/original_width``   int64
``image/path``             bytes    path relative to the image root (POSIX separators)
``patient_id``             bytes    patient identifier of the source
``view``                   bytes    ``frontal``, ``lateral`` or empty
``projection``             bytes    ``PA``, ``AP``, ``LL``... or empty
``patient/sex``            bytes    ``M``, ``F`` or empty (optional: absent in older records)
``patient/age``            int64    age in years at the study, -1 unknown (optional, as sex)
``labels/state``           int64[K] raw state per class in ``dataset.json`` order:
                                    1 positive, 0 negative, -1 uncertain, -2 blank
``bbox/label``             int64[N] class index of each box (NIH boxes, phantoms)
``bbox/xmin`` ... ``ymax`` float[N] box corners in stored-image pixels
=========================  =======  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

IMAGE_KEY = "image/encoded"
FORMAT_KEY = "image/format"
HEIGHT_KEY = "image/height"
WIDTH_KEY = "image/width"
ORIGINAL_HEIGHT_KEY = "image/original_height"
ORIGINAL_WIDTH_KEY = "image/original_width"
PATH_KEY = "image/path"
PATIENT_KEY = "patient_id"
VIEW_KEY = "view"
PROJECTION_KEY = "projection"
SEX_KEY = "patient/sex"
AGE_KEY = "patient/age"
UNKNOWN_AGE = -1
LABELS_KEY = "labels/state"
BOX_LABEL_KEY = "bbox/label"
BOX_XMIN_KEY = "bbox/xmin"
BOX_YMIN_KEY = "bbox/ymin"
BOX_XMAX_KEY = "bbox/xmax"
BOX_YMAX_KEY = "bbox/ymax"
BOX_COORD_KEYS = (BOX_XMIN_KEY, BOX_YMIN_KEY, BOX_XMAX_KEY, BOX_YMAX_KEY)


@dataclass(frozen=True)
class Record:
    """Everything one record holds, in plain Python types.

    ``boxes`` are ``(class_index, xmin, ymin, xmax, ymax)`` in stored-image pixels.
    """

    image: bytes
    image_format: str
    height: int
    width: int
    original_height: int
    original_width: int
    path: str
    patient_id: str
    view: str
    projection: str
    states: Sequence[int]
    boxes: Sequence[tuple[int, float, float, float, float]] = field(default_factory=tuple)
    sex: str = ""
    age: int = UNKNOWN_AGE


def serialize(record: Record) -> bytes:
    """A ``Record`` as a serialized ``tf.train.Example``."""
    import tensorflow as tf

    def b(*values: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))

    def i(values: Sequence[int]) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    def f(values: Sequence[float]) -> tf.train.Feature:
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))

    boxes = list(record.boxes)
    features = {
        IMAGE_KEY: b(record.image),
        FORMAT_KEY: b(record.image_format.encode()),
        HEIGHT_KEY: i([record.height]),
        WIDTH_KEY: i([record.width]),
        ORIGINAL_HEIGHT_KEY: i([record.original_height]),
        ORIGINAL_WIDTH_KEY: i([record.original_width]),
        PATH_KEY: b(record.path.encode()),
        PATIENT_KEY: b(record.patient_id.encode()),
        VIEW_KEY: b(record.view.encode()),
        PROJECTION_KEY: b(record.projection.encode()),
        SEX_KEY: b(record.sex.encode()),
        AGE_KEY: i([record.age]),
        LABELS_KEY: i(record.states),
        BOX_LABEL_KEY: i([box[0] for box in boxes]),
    }
    for column, key in enumerate(BOX_COORD_KEYS, start=1):
        features[key] = f([box[column] for box in boxes])
    example = tf.train.Example(features=tf.train.Features(feature=features))
    # deterministic: map entries sorted by key, so shards are byte-identical whatever process
    # (and hash seed) serialised them.
    return example.SerializeToString(deterministic=True)


def feature_spec(num_classes: int) -> dict:
    """The ``tf.io.parse_single_example`` spec of a record with ``num_classes`` label states."""
    import tensorflow as tf

    scalar_str = tf.io.FixedLenFeature([], tf.string)
    scalar_int = tf.io.FixedLenFeature([], tf.int64)
    spec = {
        IMAGE_KEY: scalar_str,
        FORMAT_KEY: scalar_str,
        HEIGHT_KEY: scalar_int,
        WIDTH_KEY: scalar_int,
        ORIGINAL_HEIGHT_KEY: scalar_int,
        ORIGINAL_WIDTH_KEY: scalar_int,
        PATH_KEY: scalar_str,
        PATIENT_KEY: scalar_str,
        VIEW_KEY: scalar_str,
        PROJECTION_KEY: scalar_str,
        # Defaults: records written before these features existed still parse.
        SEX_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
        AGE_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=UNKNOWN_AGE),
        LABELS_KEY: tf.io.FixedLenFeature([num_classes], tf.int64),
        BOX_LABEL_KEY: tf.io.VarLenFeature(tf.int64),
    }
    spec.update({key: tf.io.VarLenFeature(tf.float32) for key in BOX_COORD_KEYS})
    return spec
