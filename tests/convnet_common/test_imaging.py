"""Decoding straight to the model's input: the reduced-resolution JPEG path and its guards."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from convnet_common import imaging
from convnet_common.image_headers import inspect_header
from convnet_common.imaging import (
    ImageReadError,
    decode_for_model,
    decode_image_rgb,
    load_image_for_model,
    resize_for_model,
)


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields plus mild noise: closer to a photo than pure noise is."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.add(image, rng.integers(0, 12, (height, width, 3), dtype=np.uint8))


def jpeg_bytes(rgb: np.ndarray, quality: int = 92) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return encoded.tobytes()


def with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an EXIF APP1 segment carrying `orientation` (1-8) inserted after SOI."""
    entry = struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + entry + b"\x00\x00\x00\x00"
    app1 = b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + tiff
    return jpeg[:2] + app1 + jpeg[2:]


@pytest.mark.parametrize(
    ("source", "target", "flag"),
    [
        ((480, 640), (224, 224), cv2.IMREAD_REDUCED_COLOR_2),
        ((1200, 1600), (224, 224), cv2.IMREAD_REDUCED_COLOR_4),
        ((3000, 4000), (32, 32), cv2.IMREAD_REDUCED_COLOR_8),
        ((400, 640), (224, 224), None),  # short side under twice the input: full decode
        ((480, 640), (299, 299), None),
    ],
)
def test_reduction_factor_keeps_the_short_side_above_the_input(source, target, flag) -> None:
    data = jpeg_bytes(np.zeros((*source, 3), np.uint8))
    assert imaging._reduction_flag(inspect_header(data), *target) == flag


def test_png_is_never_reduced() -> None:
    ok, png = cv2.imencode(".png", np.zeros((1000, 1000, 3), np.uint8))
    assert imaging._reduction_flag(inspect_header(png.tobytes()), 32, 32) is None


def test_reduced_decode_stays_close_to_the_full_decode() -> None:
    data = jpeg_bytes(photo_like(960, 1280))
    reduced = decode_for_model(data, 224, 224)
    full = resize_for_model(decode_image_rgb(data), 224, 224)
    assert reduced.shape == (224, 224, 3) and reduced.dtype == np.uint8
    difference = np.abs(reduced.astype(int) - full.astype(int))
    # Both are area averages of the same picture; they differ only by rounding and the
    # IDCT's own scaling, a grey level or two on average.
    assert difference.mean() < 2.0 and np.percentile(difference, 99) <= 8


@pytest.mark.parametrize("orientation", range(1, 9))
def test_reduced_decode_applies_exif_orientation(orientation: int) -> None:
    image = np.zeros((600, 1000, 3), np.uint8)
    image[:150, :250] = 255  # a white block in the top-left corner of the stored pixels
    data = with_orientation(jpeg_bytes(image), orientation)
    full = decode_image_rgb(data)
    reduced = decode_for_model(data, 100, 100)  # 600 >= 4 * 100: decoded at a quarter
    assert imaging._reduction_flag(inspect_header(data), 100, 100) == cv2.IMREAD_REDUCED_COLOR_4
    expected = resize_for_model(full, 100, 100)
    # Where the block ends up depends on the orientation; the reduced path must agree.
    assert np.abs(reduced.astype(int) - expected.astype(int)).mean() < 3.0
    rotated = orientation >= 5
    assert full.shape[:2] == ((1000, 600) if rotated else (600, 1000))


def test_bad_bytes_give_the_same_errors_on_the_reduced_path(tmp_path: Path) -> None:
    data = jpeg_bytes(photo_like(960, 1280))
    with pytest.raises(ImageReadError, match="empty"):
        decode_for_model(b"", 224, 224)
    with pytest.raises(ImageReadError, match="not a readable image"):
        decode_for_model(data[:600], 224, 224)  # cut inside the headers
    # A header that claims 60,000 x 60,000 pixels (JPEG tops out at 65,535) is refused
    # before any pixel is allocated.
    huge = bytearray(data)
    sof = huge.index(b"\xff\xc0")
    huge[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    assert imaging._reduction_flag(inspect_header(bytes(huge)), 224, 224) == cv2.IMREAD_REDUCED_COLOR_8
    with pytest.raises(ImageReadError, match="megapixels"):
        decode_for_model(bytes(huge), 224, 224)
    with pytest.raises(ImageReadError, match="not found"):
        load_image_for_model(tmp_path / "missing.jpg", 224, 224)


def test_load_image_for_model_reads_odd_names(tmp_path: Path) -> None:
    path = tmp_path / "-leading dash ünïcode.jpg"
    data = jpeg_bytes(photo_like(480, 640))
    path.write_bytes(data)
    assert np.array_equal(load_image_for_model(path, 224, 224), decode_for_model(data, 224, 224))


@pytest.mark.parametrize("shape", [(480, 640), (1000, 6000)])  # ordinary photo; a panorama's long side
def test_reduced_decode_then_resize_matches_the_full_pipeline(shape) -> None:
    data = jpeg_bytes(photo_like(*shape, seed=3))
    assert imaging._reduction_flag(inspect_header(data), 224, 224) is not None
    reduced = decode_for_model(data, 224, 224)
    full = resize_for_model(decode_image_rgb(data), 224, 224)
    difference = np.abs(reduced.astype(int) - full.astype(int))
    assert reduced.shape == (224, 224, 3) and difference.mean() < 1.5 and np.percentile(difference, 99) <= 6
