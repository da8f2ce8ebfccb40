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


def dicom(pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int = 12,
          window: tuple[float, float] | None = None) -> bytes:
    """An uncompressed single-frame DICOM of a uint16 [H, W] array."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
