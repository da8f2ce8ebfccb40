"""The one image-decoding module: any radiograph file -> 8-bit gray, used by build_records and predict.

Conversion (documented once, applied everywhere):

* PNG / JPEG (and anything else OpenCV reads) are decoded with ``cv2.imdecode(IMREAD_UNCHANGED)``.
* DICOM (``.dcm`` or the ``DICM`` preamble): modality LUT (rescale slope/intercept), then the VOI LUT or
  window centre/width stored in the file, then the Presentation LUT (Shape INVERSE inverts) or, without
  one, MONOCHROME1 is inverted, so that dense (bone) is bright as in MONOCHROME2. Multi-frame files use
  frame 0, the only frame decoded. Compressed transfer syntaxes (JPEG Lossless, JPEG baseline, JPEG-LS,
  JPEG 2000, RLE) are decoded by pydicom's plugins; those beyond RLE need the ``[dicom]`` extra
  (``pylibjpeg`` with its ``libjpeg`` and ``openjpeg`` plugins), and without it the file is refused
  with one line naming the extra.
* Colour: RGB/BGR -> gray with ITU-R BT.601 luma weights (``cv2.cvtColor``); an alpha channel is
  dropped (radiographs saved as RGBA carry a constant alpha).
* More than 8 bits (16-bit PNG, DICOM): linear map of the image's own [min, max] to [0, 255]. Detectors
  store 10-16 significant bits in 16-bit words, so dividing by 257 would leave most images dark; the
  min-max map is what torchxrayvision and most CXR loaders do.

Only regular files are read (``read_file``): a FIFO would block forever, a link to ``/dev/zero`` never
ends. The file size is checked before reading, and the pixel count (all frames of a multi-frame DICOM)
from the header before any pixel is decoded, so a decompression bomb (a small file declaring an enormous
image) is refused without allocating it. Damage that libjpeg repairs silently (a truncated scan padded
with grey) is reported by it only on stderr; ``decode_gray8`` captures those messages, refuses such
images and keeps them off the terminal.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cxr_tf import reporting
from cxr_tf.io.paths import UnreadableFile, UnsafePath, read_regular_file, resolve
from cxr_tf.registry import Choices
from cxr_tf.stderr_redirect import stderr_to

log = reporting.logger("imaging")

# 8192 x 8192: four times the largest CXR detectors (~4300 px a side) and far below what would
# exhaust a worker's memory (64 Mpx x 2 bytes = 128 MB).
MAX_PIXELS = 8192 * 8192
# Below this a file cannot hold a radiograph worth learning from (and 1-px "images" are usually
# placeholders written by broken exports).
MIN_SIDE = 16
# An uncompressed 8192 x 8192 16-bit RGBA image is 512 MB: no radiograph file within MAX_PIXELS comes
# near this, so a larger file (e.g. a 2 GB sparse ".png") is refused from its size without being read.
MAX_FILE_BYTES = 1 << 30
# What libjpeg prints when it pads a truncated scan with grey instead of failing (jerror.h:
# JWRN_JPEG_EOF "Premature end of JPEG file", JWRN_HIT_MARKER "premature end of data segment").
_TRUNCATION_MESSAGES = ("premature end of jpeg file", "premature end of data segment")
# Largest stored or model-input side a flag accepts: about the largest detectors' (~4300 px). A batch of
# 32 float32 3-channel 4096 px inputs is already 6.4 GB.
MAX_SIDE = 4096
# File names taken for images when walking a folder (build_records' folder adapters, predict): the decoder
# reads PNG and JPEG, and DICOM whatever the name (the DICM preamble); ".dicom" is a common DICOM spelling.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")

RESIZE_MODES = Choices("resize mode", ("pad", "squash", "crop"))
ENCODINGS = Choices("encoding", ("png", "jpeg"))
JPEG_QUALITY = 95


class ImageError(ValueError):
    """A file that cannot be used as an image; ``str(err)`` is the reason shown in skipped.csv."""


@dataclass(frozen=True)
class Transform:
    """Maps source pixels to stored-image pixels: ``x' = x * sx + dx``, ``y' = y * sy + dy``."""

    sx: float
    sy: float
    dx: float
    dy: float

    def box(self, x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        """A source ``x, y, w, h`` box as stored-image ``xmin, ymin, xmax, ymax``."""
        return (x * self.sx + self.dx, y * self.sy + self.dy,
                (x + w) * self.sx + self.dx, (y + h) * self.sy + self.dy)


def read_file(path: str | Path) -> bytes:
    """The bytes of the regular file ``path`` (``cxr_tf.io.paths.read_regular_file`` up to ``MAX_FILE_BYTES``).

    Raises:
        ImageError: missing, not a regular file (directory, FIFO, device, socket), a symbolic link
            loop, unreadable or too large; ``str(err)`` is the reason.
    """
    try:
        return read_regular_file(path, MAX_FILE_BYTES)
    except UnreadableFile as err:
        raise ImageError(str(err)) from None


def load_gray8(path: str | Path) -> np.ndarray:
    """``decode_gray8`` of the regular file ``path`` (see ``read_file``); raises ``ImageError``."""
    return decode_gray8(read_file(path), Path(path).name)


def load_gray8_or_reason(path: str | Path, root: Path | None = None) -> tuple[np.ndarray, None] | tuple[None, str]:
    """``load_gray8`` of ``path``, or why the file cannot be used: every command skips, counts and lists
    bad files with this reason instead of stopping.

    Args:
        path: the file; with ``root``, a path relative to it (from ``paths.relative_path``) that must
            not lead out of it, symbolic links included (``paths.resolve``).
        root: the image root, or ``None`` for a path given as is.

    Returns:
        ``(uint8 [H, W], None)``, or ``(None, reason)`` for an unsafe path, a missing, non-regular,
        oversized, corrupt or truncated file (the reason as skipped.csv and predict's ``error`` show it).
    """
    try:
        return load_gray8(path if root is None else resolve(root, str(path))), None
    except (UnsafePath, ImageError) as err:
        return None, str(err)


def is_dicom(data: bytes, name: str = "") -> bool:
    """True for DICOM files (the ``DICM`` magic at byte 128, or a ``.dcm`` name)."""
    return data[128:132] == b"DICM" or name.lower().endswith(".dcm")


def decode_gray8(data: bytes, name: str = "") -> np.ndarray:
    """Decode an encoded image to 8-bit gray.

    Args:
        data: the file's bytes (PNG, JPEG, DICOM, or another format OpenCV reads).
        name: file name, used only to recognise DICOM files without a preamble.

    Returns:
        uint8 array [H, W], 0 black ... 255 white, dense tissue bright.

    Raises:
        ImageError: empty, not an image, truncated, corrupt, too large or too small.
    """
    if not data:
        raise ImageError("empty file")
    if is_dicom(data, name):
        pixels = _decode_dicom(data)
    else:
        _check_header(data)
        pixels, messages = _imdecode(data)
        for message in messages:
            if message.lower().rstrip(".").endswith(_TRUNCATION_MESSAGES):
                raise ImageError(f"truncated image (decoder: {message})")
        if pixels is None:
            raise ImageError("corrupt image (decoder failed)")
        if messages:
            log.debug("decoder warnings: %s", "; ".join(messages))
    return to_gray8(pixels)


def _imdecode(data: bytes) -> tuple[np.ndarray | None, list[str]]:
    """``cv2.imdecode`` with what libpng/libjpeg write to stderr meanwhile, as lines.

    The C libraries write to file descriptor 2 directly, so it is pointed at a temporary file for the
    call (a few microseconds, against milliseconds of decoding).
    """
    with tempfile.TemporaryFile() as sink:
        with stderr_to(sink):
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        sink.seek(0)
        messages = [line.strip() for line in sink.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return pixels, messages


def _check_header(data: bytes) -> None:
    """Refuse non-images, JPEGs without an end marker and oversized images from the header alone."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:  # lazy: reads the header only
                width, height = header.size
                fmt = header.format
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised format)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"image too large (over {MAX_PIXELS} pixels)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"corrupt image header ({err})") from None
    _check_size(width, height)
    # A JPEG cut short fails in OpenCV without a message; one cut short and given an end marker again
    # decodes with its lower part grey, and only libjpeg's warning tells (see decode_gray8).
    if fmt == "JPEG" and b"\xff\xd9" not in data[-64:].rstrip(b"\x00"):
        raise ImageError("truncated image (JPEG end marker missing)")


def _check_size(width: int, height: int, frames: int = 1) -> None:
    """Refuse images over ``MAX_PIXELS`` (all frames of a multi-frame file count) or under ``MIN_SIDE``."""
    if width * height * frames > MAX_PIXELS:
        size = f"{width}x{height}" + (f" x {frames} frames" if frames > 1 else "")
        raise ImageError(f"image too large ({size} exceeds {MAX_PIXELS} pixels)")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"image too small ({width}x{height}; at least {MIN_SIDE} px a side)")


# The DICOM extra (setup.cfg) holds the pixel decoders that pydicom needs for the compressed transfer
# syntaxes hospitals write: JPEG Lossless (process 14), JPEG baseline/extended, JPEG-LS, JPEG 2000.
DICOM_EXTRA = "pip install 'cxr_tf[dicom]'"


def _decode_dicom(data: bytes) -> np.ndarray:
    """DICOM bytes -> uint8 [H, W] (see the module docstring for the grayscale pipeline)."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_presentation_lut, apply_voi_lut, pixel_array

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        frames = int(ds.get("NumberOfFrames") or 1)
        _check_size(int(ds.Columns), int(ds.Rows), frames)
        _check_decoder(ds)
        pixels = pixel_array(ds, index=0) if frames > 1 else ds.pixel_array  # frame 0 only is decoded
    except ImageError:
        raise
    except (InvalidDicomError, AttributeError, KeyError, TypeError) as err:
        raise ImageError(f"not a usable DICOM image ({err})") from None
    except (RuntimeError, NotImplementedError, ValueError, EOFError, OSError) as err:
        raise ImageError(f"corrupt DICOM ({' '.join(str(err).split())})") from None
    if pixels.ndim == 3:  # colour DICOM (rare): luma only
        return to_gray8(pixels[..., ::-1] if pixels.shape[-1] == 3 else pixels)
    pixels = apply_voi_lut(apply_modality_lut(pixels, ds), ds).astype(np.float64)
    if "PresentationLUTShape" in ds or "PresentationLUTSequence" in ds:
        # The file's own Presentation LUT maps to P-values (bright = high) and already accounts for
        # MONOCHROME1: DX images pair MONOCHROME1 with INVERSE (DICOM PS3.3 C.8.11.1.1.1).
        pixels = apply_presentation_lut(pixels, ds).astype(np.float64)
    elif getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return _stretch_to_uint8(pixels)


def _check_decoder(ds: object) -> None:
    """Refuse, in one line, pixel data that no installed decoder can read (before trying to)."""
    from pydicom.pixels import get_decoder

    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is None or not syntax.is_compressed:
        return
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise ImageError(f"DICOM transfer syntax {syntax.name} ({syntax}) is not supported") from None
    if not decoder.is_available:
        raise ImageError(f"DICOM pixel data is {syntax.name}, which needs a decoder that is not installed: "
                         f"{DICOM_EXTRA}") from None


def to_gray8(pixels: np.ndarray) -> np.ndarray:
    """Any decoded array ([H,W], [H,W,C] BGR/BGRA/gray+alpha; 8/16-bit int or float) -> uint8 [H,W]."""
    if pixels.ndim == 3:
        channels = pixels.shape[2]
        if channels == 1 or channels == 2:  # gray, gray + alpha
            pixels = pixels[..., 0]
        else:
            pixels = cv2.cvtColor(np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_BGR2GRAY)
    if pixels.ndim != 2:
        raise ImageError(f"unsupported image layout {pixels.shape}")
    if pixels.dtype == np.uint8:
        return pixels
    return _stretch_to_uint8(pixels.astype(np.float64))


def _stretch_to_uint8(pixels: np.ndarray) -> np.ndarray:
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, np.uint8)
    return np.round((pixels - low) * (255.0 / (high - low))).astype(np.uint8)


def resize(image: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, Transform]:
    """Resize a gray image to ``size`` x ``size``.

    Args:
        image: uint8 [H, W].
        size: output side in pixels.
        mode: ``squash`` (stretch both axes; aspect ratio lost), ``pad`` (fit the longer side,
            centre, pad with black; geometry such as the cardiothoracic ratio kept), ``crop`` (fit the
            shorter side, centre crop; edges lost).

    Returns:
        (uint8 [size, size], the ``Transform`` from source to stored pixels, for boxes).
    """
    RESIZE_MODES.check(mode, "resize")
    height, width = image.shape
    if mode == "squash":
        return _scale(image, size, size), Transform(size / width, size / height, 0.0, 0.0)
    scale = (min if mode == "pad" else max)(size / width, size / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    scaled = _scale(image, new_w, new_h)
    if mode == "pad":
        dx, dy = (size - new_w) // 2, (size - new_h) // 2
        out = np.zeros((size, size), np.uint8)
        out[dy:dy + new_h, dx:dx + new_w] = scaled
        return out, Transform(scale, scale, float(dx), float(dy))
    dx, dy = (new_w - size) // 2, (new_h - size) // 2  # crop
    return np.ascontiguousarray(scaled[dy:dy + size, dx:dx + size]), Transform(scale, scale, float(-dx), float(-dy))


def _scale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    # INTER_AREA averages when shrinking (no aliasing of rib edges and noise); it equals
    # bilinear when enlarging.
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def encode(image: np.ndarray, encoding: str) -> bytes:
    """uint8 [H, W] -> PNG (lossless) or JPEG (quality 95) bytes."""
    ext, params = {"png": (".png", []), "jpeg": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])}[encoding]
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise ImageError(f"{encoding} encoding failed")
    return buf.tobytes()
