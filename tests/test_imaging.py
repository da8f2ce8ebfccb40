"""The one decoding path: every accepted format ends as uint8 gray; every bad file is an ImageError."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cxr_tf.io import imaging
from tests import image_factory as make


def test_png_and_jpeg_decode_to_uint8_gray():
    image = make.gradient()
    assert np.array_equal(imaging.decode_gray8(make.png(image)), image)
    decoded = imaging.decode_gray8(make.jpeg(image))
    assert decoded.dtype == np.uint8 and decoded.shape == image.shape
    assert np.abs(decoded.astype(int) - image).mean() < 3


@pytest.mark.parametrize("convert", [
    pytest.param(lambda g: cv2.cvtColor(g, cv2.COLOR_GRAY2BGR), id="rgb"),
    pytest.param(lambda g: cv2.cvtColor(g, cv2.COLOR_GRAY2BGRA), id="rgba"),
])
def test_colour_images_of_a_gray_radiograph_give_back_the_gray_values(convert):
    image = make.gradient()
    assert np.array_equal(imaging.decode_gray8(make.png(convert(image))), image)


def test_cmyk_jpeg_is_converted_not_skipped():
    image = make.gradient(64, 64)
    decoded = imaging.decode_gray8(make.cmyk_jpeg(image))
    assert decoded.shape == image.shape
    assert np.corrcoef(decoded.ravel(), image.ravel())[0, 1] > 0.95


def test_16_bit_png_is_stretched_from_its_own_min_max_to_full_8_bit_range():
    twelve_bit = (make.gradient().astype(np.uint16) * 16 + 100)  # 100 ... 4180
    decoded = imaging.decode_gray8(make.png(twelve_bit))
    assert decoded.min() == 0 and decoded.max() == 255
    expected = np.round((twelve_bit - 100.0) * 255 / (twelve_bit.max() - 100.0))
    assert np.abs(decoded - expected).max() <= 1


def test_dicom_monochrome1_is_inverted_so_bone_is_bright():
    pixels = make.gradient().astype(np.uint16) * 16
    mono2 = imaging.decode_gray8(make.dicom(pixels, "MONOCHROME2"))
    mono1 = imaging.decode_gray8(make.dicom(pixels, "MONOCHROME1"))
    assert mono2.dtype == np.uint8 and mono2.shape == pixels.shape
    assert np.abs(mono1.astype(int) + mono2 - 255).max() <= 1


def test_dicom_window_is_applied_before_the_8_bit_map():
    pixels = make.gradient().astype(np.uint16) * 16  # 0 ... 4080
    decoded = imaging.decode_gray8(make.dicom(pixels, window=(1000, 400)))  # 800 ... 1200 visible
    assert (decoded[pixels <= 800] == 0).all() and (decoded[pixels >= 1200] == 255).all()


@pytest.mark.parametrize("data, reason", [
    pytest.param(b"", "empty file", id="zero-bytes"),
    pytest.param(b"just some text, not pixels" * 8, "not an image", id="text"),
    pytest.param(make.png(make.gradient())[:150], "corrupt", id="truncated-png"),
    pytest.param(make.jpeg(make.gradient(64, 64))[:-200], "truncated", id="truncated-jpeg"),
    pytest.param(make.png_bomb(), "too large", id="decompression-bomb"),
    pytest.param(make.png_bomb(9000, 9000), "too large", id="over-pixel-limit"),
    pytest.param(make.png(np.zeros((4, 4), np.uint8)), "too small", id="absurdly-small"),
])
def test_bad_files_raise_image_error_with_a_reason(data, reason):
    with pytest.raises(imaging.ImageError, match=reason):
        imaging.decode_gray8(data)


@pytest.mark.parametrize("mode", ["squash", "pad", "crop"])
def test_resize_gives_square_uint8_and_maps_boxes(mode):
    image = np.zeros((200, 100), np.uint8)
    image[50:70, 20:40] = 255  # a bright 20x20 square at x=20, y=50
    out, transform = imaging.resize(image, 64, mode)
    assert out.shape == (64, 64) and out.dtype == np.uint8
    xmin, ymin, xmax, ymax = (round(v) for v in transform.box(20, 50, 20, 20))
    inside = out[ymin:ymax, xmin:xmax]
    assert inside.size and inside.mean() > 200
    assert out.sum() - inside.sum() < 0.15 * out.sum()


def test_pad_keeps_aspect_ratio_with_black_borders():
    out, transform = imaging.resize(np.full((200, 100), 200, np.uint8), 64, "pad")
    assert transform.sx == transform.sy == pytest.approx(0.32)
    assert (out[:, :16] == 0).all() and (out[:, 48:] == 0).all() and (out[:, 17:47] == 200).all()
