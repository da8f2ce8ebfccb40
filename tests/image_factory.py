"""Small encoded images, good and bad, for decoding and build tests (shared by several test files)."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np


def gradient(height: int = 48, width: int = 40) -> np.ndarray:
    """A uint8 [H, W] image with distinct rows and columns (so flips and shifts show)."""
    y, x = np.mgrid[0:height, 0:width]
    return ((y * 255 // max(1, height - 1) + x * 3) % 256).astype(np.uint8)


def png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8/uint16 gray, BGR or BGRA array."""
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def cmyk_jpeg(image: np.ndarray) -> bytes:
    """A CMYK JPEG (as some scanners write) of a gray image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).convert("CMYK").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny valid-looking PNG whose header declares ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


# Transfer syntaxes hospitals write, by the short names the tests use.
DICOM_SYNTAXES = ("explicit", "rle", "jpeg_lossless", "jpeg_baseline", "jpeg2000")


def dicom(pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int = 12,
          window: tuple[float, float] | None = None, *, syntax: str = "explicit",
          presentation_lut: str | None = None, frames: int | None = None) -> bytes:
    """A DICOM of uint16 (uint8 for ``jpeg_baseline``) ``[H, W]`` pixels, or ``[F, H, W]`` frames.

    ``syntax`` is one of ``DICOM_SYNTAXES``; ``presentation_lut`` a Presentation LUT Shape
    (``IDENTITY``/``INVERSE``); ``frames`` overrides the Number of Frames the header declares (a file
    that claims more frames than it holds, to test refusals made from the header).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import (ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, JPEGLosslessSV1,
                             RLELossless, SecondaryCaptureImageStorage, generate_uid)

    stack = pixels[None] if pixels.ndim == 2 else pixels
    eight_bit = syntax == "jpeg_baseline"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = stack.shape[1:]
    if frames is not None or len(stack) > 1:
        ds.NumberOfFrames = frames or len(stack)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    bits = 8 if eight_bit else 16
    stored = 8 if eight_bit else bits_stored
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, stored, stored - 1, 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if presentation_lut is not None:
        ds.PresentationLUTShape = presentation_lut
    stack = stack.astype(np.uint8 if eight_bit else np.uint16)
    if syntax in ("explicit", "rle", "jpeg2000"):
        ds.PixelData = stack.tobytes()
        if syntax != "explicit":  # pydicom's own RLE encoder; pylibjpeg-openjpeg's J2K encoder
            ds.compress(RLELossless if syntax == "rle" else JPEG2000Lossless)
    elif syntax == "jpeg_lossless":
        ds.PixelData = encapsulate([lossless_jpeg(frame, stored) for frame in stack])
        meta.TransferSyntaxUID = JPEGLosslessSV1
    elif syntax == "jpeg_baseline":
        ds.PixelData = encapsulate([cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
                                    for frame in stack])
        meta.TransferSyntaxUID = JPEGBaseline8Bit
    else:
        raise ValueError(f"syntax {syntax!r} is not one of {DICOM_SYNTAXES}")
    if meta.TransferSyntaxUID.is_compressed:
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def lossless_jpeg(image: np.ndarray, precision: int) -> bytes:
    """A JPEG Lossless (ITU T.81 process 14, predictor 1 = left neighbour) codestream of a gray image.

    No Python package writes this format (the one most DX modalities store), so the tests write it:
    one Huffman table giving every difference category (0-16) a 5-bit code.
    """
    height, width = image.shape
    x = image.astype(np.int64)
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[1:, 1:] = x[1:, :-1]
    diff = (x - pred + (1 << 15)) % (1 << 16) - (1 << 15)  # differences are taken modulo 2^16
    bits = []
    for d in diff.ravel().tolist():
        ssss = abs(d).bit_length()
        bits.append(format(ssss, "05b"))
        if 0 < ssss < 16:
            bits.append(format(d if d > 0 else d + (1 << ssss) - 1, f"0{ssss}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)  # pad the last byte with 1-bits
    data = bytes(int(stream[i:i + 8], 2) for i in range(0, len(stream), 8)).replace(b"\xff", b"\xff\x00")
    counts = bytes(4) + bytes([17]) + bytes(11)  # 17 codes of length 5
    return b"".join([
        b"\xff\xd8",
        b"\xff\xc3" + struct.pack(">HBHHB", 11, precision, height, width, 1) + bytes([1, 0x11, 0]),
        b"\xff\xc4" + struct.pack(">H", 2 + 1 + 16 + 17) + bytes([0]) + counts + bytes(range(17)),
        b"\xff\xda" + struct.pack(">HB", 8, 1) + bytes([1, 0x00, 1, 0, 0]),
        data,
        b"\xff\xd9",
    ])
