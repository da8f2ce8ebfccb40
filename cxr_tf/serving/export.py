"""A run's model exported for use without cxr_tf: a ``.keras`` file or a self-contained SavedModel.

Both layouts carry the model's metadata (``cxr_tf.models.metadata.ModelMetadata``: class order, head,
thresholds, the input spec (model side, records' side, resize mode, channels), source run, cxr_tf
version), so a user needs nothing else to apply it::

    keras/                          savedmodel/
      model.keras                     saved_model.pb, variables/
      metadata.json                   assets.extra/metadata.json  (same JSON, readable without TF)

The ``.keras`` model takes float32 ``[B, S, S, 1]`` gray images 0-255 already resized as the records
were (``cxr_tf.pipeline.model_input.InputSpec.from_gray``), makes its input channels itself and returns
logits; it loads with ``keras.saving.load_model`` in safe mode after ``import cxr_tf.models`` (which
registers the input layers). The SavedModel has everything inside and needs only TensorFlow:

* ``serving_default(images)``: tf.string ``[B]`` of encoded PNG/JPEG files (any size; gray, RGB or
  RGBA; 8 or 16 bit) -> ``probabilities`` float32 ``[B, K]`` and ``labels`` int32 ``[B, K]``
  (probability >= the class's threshold). Decoding (``decode_gray8``) and resizing
  (``InputSpec.from_gray``) are graph ops; the channels are the model's first layer. A file TensorFlow cannot decode (corrupt, DICOM, CMYK JPEG) fails the whole call, as
  any serving signature does; ``python -m cxr_tf.predict`` reports such files one by one instead.
* ``pixels(pixels)``: float32 ``[B, S, S, 1]`` 0-255 model inputs (gray) -> the same two outputs.
* ``metadata()``: ``json`` tf.string scalar, the metadata as JSON.

An export is written into a temporary directory beside its destination and renamed into place, so an
interrupted export never leaves a directory that looks finished; the next export to the same place removes
what a killed one left (``.<name>.partial-*``, ``.<name>.old-*``). The serving signature checks the pixel
count a PNG, JPEG or GIF header declares before decoding it (``imaging.MAX_PIXELS``), and an empty batch
gives empty outputs.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

import tensorflow as tf

from cxr_tf.io import atomic, imaging
from cxr_tf.models.metadata import ModelMetadata
from cxr_tf.training import runs
from cxr_tf.errors import UserError
from cxr_tf.evaluation import calibration
from cxr_tf.registry import Choices

FORMATS = Choices("export format", ("keras", "savedmodel"))
METADATA_FILE = "metadata.json"
KERAS_FILE = "model.keras"
SAVEDMODEL_METADATA = Path("assets.extra") / METADATA_FILE  # TF Serving's place for files TF does not load

# ITU-R BT.601 luma in OpenCV's 15-bit fixed point (imgproc/src/color_rgb.simd.hpp: 0.299, 0.587, 0.114
# scaled by 2^15), so an RGB file gives exactly the gray levels of cv2.cvtColor in imaging.decode_gray8
# (checked on random 8- and 16-bit colours against OpenCV 5.0).
_LUMA_SHIFT = 15
_LUMA_RGB = (9798, 19235, 3735)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
# A PNG's bit depth is byte 24: signature (8), IHDR length (4), "IHDR" (4), width (4), height (4).
_PNG_DEPTH_BYTE = 24


def export(run: runs.Run, fmt: str, out: Path) -> Path:
    """Write ``run``'s model as ``fmt`` (``keras`` | ``savedmodel``) into the directory ``out``.

    An earlier export in ``out`` is replaced; any other existing ``out`` is a ``UserError``.

    Returns:
        ``out``.
    """
    FORMATS.check(fmt, "--format")
    out = Path(out)
    if out.exists() and not _replaceable(out):
        raise UserError(f"--out {out}: exists and is not an earlier export; remove it or choose another --out")
    meta = dataclasses.replace(run.model_metadata(), exported_at=datetime.datetime.now(datetime.timezone.utc)
                               .isoformat(timespec="seconds"))
    with atomic.staged_directory(out) as staging:
        (_write_keras if fmt == "keras" else _write_savedmodel)(run.load_model(), meta, staging)
    return out


def _replaceable(path: Path) -> bool:
    """An empty directory or an earlier export (never a user's other files)."""
    return path.is_dir() and (not any(path.iterdir()) or (path / METADATA_FILE).is_file()
                              or (path / SAVEDMODEL_METADATA).is_file())


def _write_metadata(meta: ModelMetadata, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(meta.to_text())


def _write_keras(model: Any, meta: ModelMetadata, directory: Path) -> None:
    # Re-saved from the compile=False model: no optimizer state and no cxr_tf losses or metrics,
    # so keras.saving.load_model needs no custom objects.
    model.save(directory / KERAS_FILE)
    _write_metadata(meta, directory / METADATA_FILE)


def _write_savedmodel(model: Any, meta: ModelMetadata, directory: Path) -> None:
    import keras

    spec = meta.input_spec
    size = spec.image_size
    thresholds = tf.constant([meta.thresholds[name] for name in meta.classes], tf.float32)
    meta_json = json.dumps(meta.to_dict())

    def outputs(pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        # An empty batch gets empty outputs: convolutions under oneDNN return a misshapen [0, ...]
        # tensor that BatchNormalization then refuses.
        probabilities = tf.cond(
            tf.shape(pixels)[0] > 0,
            lambda: tf.cast(calibration.apply(meta.head.probabilities(model(pixels, training=False)),
                                              meta.calibration, meta.classes), tf.float32),
            lambda: tf.zeros([0, len(meta.classes)], tf.float32))
        return {"probabilities": probabilities, "labels": tf.cast(probabilities >= thresholds, tf.int32)}

    def prepare(data: tf.Tensor) -> tf.Tensor:
        return spec.from_gray(decode_gray8(data))

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return outputs(tf.map_fn(prepare, images, fn_output_signature=tf.TensorSpec([size, size, 1], tf.float32)))

    def from_pixels(pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        return outputs(pixels)

    def describe() -> dict[str, tf.Tensor]:
        return {"json": tf.constant(meta_json)}

    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", serve, [tf.TensorSpec([None], tf.string, name="images")])
    archive.add_endpoint("pixels", from_pixels, [tf.TensorSpec([None, size, size, 1], tf.float32, name="pixels")])
    archive.add_endpoint("metadata", describe, [])
    archive.write_out(str(directory), verbose=False)
    _write_metadata(meta, directory / SAVEDMODEL_METADATA)


def decode_gray8(data: tf.Tensor) -> tf.Tensor:
    """The graph twin of ``cxr_tf.io.imaging.decode_gray8`` for PNG and JPEG (also GIF, BMP).

    Colour -> BT.601 luma with OpenCV's integer weights; alpha dropped; 16-bit PNGs stretched from
    their own [min, max] to [0, 255] as ``imaging`` does; JPEGs with libjpeg's accurate integer IDCT
    as OpenCV does. The gray levels equal ``imaging``'s for gray, RGB, RGBA, 8- and 16-bit PNGs and
    gray and colour JPEGs (tests); DICOM and CMYK JPEG are not decodable here.

    Args:
        data: tf.string scalar, the file's bytes.

    Returns:
        uint8 [H, W, 1].
    """
    # Padded so that files shorter than a PNG header take the decode_image branch, which reports them.
    header = tf.strings.join([tf.strings.substr(data, 0, _PNG_DEPTH_BYTE + 1), b"\0" * (_PNG_DEPTH_BYTE + 1)])
    png = tf.equal(tf.strings.substr(header, 0, len(_PNG_SIGNATURE)), _PNG_SIGNATURE)
    sixteen_bit = tf.logical_and(png, tf.equal(tf.strings.substr(header, _PNG_DEPTH_BYTE, 1), b"\x10"))
    jpeg = tf.equal(tf.strings.substr(header, 0, len(_JPEG_SIGNATURE)), _JPEG_SIGNATURE)
    pixels = _header_pixels(data, header, png, jpeg)
    # As imaging.decode_gray8, the pixel count is checked before decoding: a 389 KB PNG of 20000 x 20000
    # zeros would otherwise cost 3.1 GB.
    with tf.control_dependencies([tf.debugging.assert_less_equal(
            pixels, tf.constant(imaging.MAX_PIXELS, tf.int64),
            message=f"image too large (over {imaging.MAX_PIXELS} pixels)")]):
        data = tf.identity(data)
    return tf.case([
        (sixteen_bit, lambda: _stretch_to_uint8(_luma(tf.io.decode_png(data, channels=0, dtype=tf.uint16)))),
        # TensorFlow's default JPEG IDCT is libjpeg's fast one; OpenCV uses the accurate one (gray
        # levels differ by up to 15 on the phantoms otherwise).
        (jpeg, lambda: tf.cast(_luma(tf.io.decode_jpeg(data, channels=0, dct_method="INTEGER_ACCURATE")), tf.uint8)),
    ], default=lambda: tf.cast(_luma(tf.io.decode_image(data, channels=0, expand_animations=False)), tf.uint8),
        exclusive=True)


def _header_pixels(data: tf.Tensor, header: tf.Tensor, png: tf.Tensor, jpeg: tf.Tensor) -> tf.Tensor:
    """int64 scalar: the pixel count a PNG (IHDR), JPEG (SOF) or GIF (screen) header declares; 0 otherwise.

    BMP needs no check: TensorFlow decodes only uncompressed BMPs, whose size bounds their pixels.
    """
    def number(offset: int, size: int, big_endian: bool) -> tf.Tensor:
        digits = tf.cast(tf.io.decode_raw(tf.strings.substr(header, offset, size), tf.uint8), tf.int64)
        weights = tf.constant([256 ** i for i in (range(size - 1, -1, -1) if big_endian else range(size))], tf.int64)
        return tf.reduce_sum(digits * weights)

    gif = tf.equal(tf.strings.substr(header, 0, 3), b"GIF")
    return tf.case([
        (png, lambda: number(16, 4, True) * number(20, 4, True)),
        (jpeg, lambda: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64))),
        (gif, lambda: number(6, 2, False) * number(8, 2, False)),
    ], default=lambda: tf.constant(0, tf.int64), exclusive=True)


def _luma(pixels: tf.Tensor) -> tf.Tensor:
    """[H, W, C] gray, gray + alpha, RGB or RGBA integers -> int64 [H, W, 1] gray levels."""
    values = tf.cast(pixels, tf.int64)
    weights = tf.constant(_LUMA_RGB, tf.int64)
    channels = tf.shape(values)[-1]
    return tf.cond(channels >= 3,
                   lambda: tf.bitwise.right_shift(
                       tf.reduce_sum(values[..., :3] * weights, -1, keepdims=True) + (1 << (_LUMA_SHIFT - 1)),
                       tf.constant(_LUMA_SHIFT, tf.int64)),
                   lambda: values[..., :1])


def _stretch_to_uint8(gray: tf.Tensor) -> tf.Tensor:
    """``imaging._stretch_to_uint8`` in float64 ops: own [min, max] -> [0, 255], a flat image -> 0."""
    values = tf.cast(gray, tf.float64)
    low, high = tf.reduce_min(values), tf.reduce_max(values)
    stretched = tf.round((values - low) * tf.math.divide_no_nan(tf.constant(255.0, tf.float64), high - low))
    return tf.cast(stretched, tf.uint8)
