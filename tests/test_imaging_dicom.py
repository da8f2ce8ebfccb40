"""DICOM as hospitals write it: compressed transfer syntaxes, Presentation LUTs, multi-frame files."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from cxr_tf.io import imaging
from tests import image_factory as make


def twelve_bit() -> np.ndarray:
    """uint16 [48, 40] gradient over 0..4080 with an isolated dark and bright pixel (edges stress the codecs)."""
    pixels = make.gradient().astype(np.uint16) * 16
    pixels[5, 5], pixels[6, 6] = 4095, 0
    return pixels


@pytest.mark.parametrize("syntax", [s for s in make.DICOM_SYNTAXES if s != "jpeg_baseline"])
def test_every_lossless_transfer_syntax_decodes_to_the_uncompressed_result(syntax):
    expected = imaging.decode_gray8(make.dicom(twelve_bit()))
    decoded = imaging.decode_gray8(make.dicom(twelve_bit(), syntax=syntax))
    assert decoded.dtype == np.uint8 and decoded.shape == expected.shape
    assert np.array_equal(decoded, expected)


def test_jpeg_baseline_dicom_decodes_close_to_its_8_bit_source():
    image = make.gradient()
    decoded = imaging.decode_gray8(make.dicom(image, syntax="jpeg_baseline"))
    assert decoded.shape == image.shape and np.abs(decoded.astype(int) - image).max() <= 3


def test_presentation_lut_inverse_inverts_a_monochrome2_image():
    identity = imaging.decode_gray8(make.dicom(twelve_bit(), presentation_lut="IDENTITY"))
    inverse = imaging.decode_gray8(make.dicom(twelve_bit(), presentation_lut="INVERSE"))
    assert np.array_equal(identity, imaging.decode_gray8(make.dicom(twelve_bit())))
    assert np.abs(inverse.astype(int) + identity - 255).max() <= 1


def test_monochrome1_with_its_inverse_presentation_lut_is_inverted_once_not_twice():
    # DX images pair MONOCHROME1 with Presentation LUT Shape INVERSE: both say "low values are white".
    plain = imaging.decode_gray8(make.dicom(twelve_bit(), "MONOCHROME1"))
    paired = imaging.decode_gray8(make.dicom(twelve_bit(), "MONOCHROME1", presentation_lut="INVERSE"))
    assert np.array_equal(plain, paired)
    assert np.abs(paired.astype(int) + imaging.decode_gray8(make.dicom(twelve_bit())) - 255).max() <= 1


@pytest.mark.parametrize("syntax", ["explicit", "jpeg_lossless"])
def test_a_multi_frame_file_yields_its_first_frame(syntax):
    frames = np.stack([twelve_bit(), twelve_bit()[::-1], 4095 - twelve_bit()])
    decoded = imaging.decode_gray8(make.dicom(frames, syntax=syntax))
    assert np.array_equal(decoded, imaging.decode_gray8(make.dicom(frames[0])))


def test_only_the_first_frame_is_decoded():
    """A broken second frame does not matter: it is never decompressed."""
    from pydicom import dcmread
    from pydicom.encaps import encapsulate

    data = make.dicom(np.stack([twelve_bit(), twelve_bit()]), syntax="jpeg_lossless")
    ds = dcmread(io.BytesIO(data))
    good = make.lossless_jpeg(twelve_bit(), 12)
    ds.PixelData = encapsulate([good, b"\xff\xd8 not a JPEG frame \xff\xd9"])
    buffer = io.BytesIO()
    ds.save_as(buffer)
    assert np.array_equal(imaging.decode_gray8(buffer.getvalue()), imaging.decode_gray8(make.dicom(twelve_bit())))


def test_a_multi_frame_file_over_the_pixel_limit_is_refused_from_its_header():
    # One real 4096 x 4096 frame (under the limit alone) in a header that declares 64 of them.
    frame = np.zeros((4096, 4096), np.uint8)
    data = make.dicom(frame, syntax="jpeg_baseline", frames=64)
    assert len(data) < 1_000_000
    with pytest.raises(imaging.ImageError, match=r"too large \(4096x4096 x 64 frames"):
        imaging.decode_gray8(data)


def test_a_compressed_dicom_without_its_decoder_names_the_extra(tmp_path):
    path = tmp_path / "lossless.dcm"
    path.write_bytes(make.dicom(twelve_bit(), syntax="jpeg_lossless"))
    # A machine without the [dicom] extra: its decoder packages cannot be imported.
    script = ("import sys\n"
              "for name in ('pylibjpeg', 'libjpeg', 'openjpeg', 'rle', 'gdcm'): sys.modules[name] = None\n"
              "from cxr_tf.io import imaging\n"
              f"try:\n    imaging.decode_gray8(open({str(path)!r}, 'rb').read())\n"
              "except imaging.ImageError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.count("\n") == 1
    assert "JPEG Lossless" in out and "pip install 'cxr_tf[dicom]'" in out


def test_the_test_jpeg_lossless_writer_is_exact_for_8_and_16_bits():
    """The writer above is test code; pylibjpeg reading its output back bit-exactly is what checks it."""
    import libjpeg

    for image, precision in [(make.gradient(), 8), (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21, 16)]:
        assert np.array_equal(libjpeg.decode(make.lossless_jpeg(image, precision)), image)
