"""Corrupt but decodable JPEGs are refused; good JPEGs of every common kind are not.

libjpeg decodes damaged scan data without an error: it fills what it cannot read with
grey (or reads zeroed bytes as codes) and only warns on stderr, which nothing reads.
The README promises an error instead of a silently wrong picture, on every path (full
decode, the reduced decodes used for large files), and a false alarm on a good photo
would be worse than the bug, so the good set here is broad: every quality, progressive,
optimised tables, restart markers, EXIF, chroma subsampling, greyscale, CMYK and flat
pictures (whose scans legitimately hold long zero runs).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from bad_images import CORRUPT_JPEG_WORDS, corrupt_jpegs, encode, oriented_jpeg, photo_like
from PIL import Image

from convnet_common.imaging import (
    CORRUPT_JPEG,
    ImageReadError,
    decode_for_display_and_model,
    decode_for_model,
    decode_image_rgb,
)


def _good_jpegs() -> dict[str, bytes]:
    photo = photo_like()
    flat_grey = np.full((64, 64, 3), 128, np.uint8)
    cases: dict[str, bytes] = {}
    for quality in (5, 25, 50, 75, 90, 95, 100):
        cases[f"pillow q{quality}"] = encode(photo, "JPEG", quality=quality)
        ok, buffer = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        cases[f"opencv q{quality}"] = buffer.tobytes()
    for name, options in {
        "progressive": {"progressive": True},
        "optimised": {"optimize": True},
        "restart rows": {"restart_marker_rows": 1},
        "restart blocks progressive": {"restart_marker_blocks": 5, "progressive": True},
        "4:4:4": {"subsampling": 0},
        "4:2:2": {"subsampling": 1},
    }.items():
        cases[name] = encode(photo, "JPEG", quality=90, **options)
    for name, flags in {
        "opencv progressive": [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
        "opencv optimised": [cv2.IMWRITE_JPEG_OPTIMIZE, 1],
        "opencv restarts": [cv2.IMWRITE_JPEG_RST_INTERVAL, 3],
    }.items():
        cases[name] = cv2.imencode(".jpg", photo, flags)[1].tobytes()
    for value in (0, 128, 255):
        flat = np.full((64, 64, 3), value, np.uint8)
        cases[f"flat {value}"] = encode(flat, "JPEG", quality=90)
        cases[f"flat {value} optimised"] = encode(flat, "JPEG", quality=90, optimize=True)
        cases[f"flat {value} progressive"] = encode(flat, "JPEG", quality=90, progressive=True)
    grey_bottom = photo.copy()
    grey_bottom[128:] = 128  # a flat mid-grey half, as grey fill looks: must not be mistaken for it
    cases["grey bottom half"] = encode(grey_bottom, "JPEG", quality=95, optimize=True)
    cases["flat grey q100 4:4:4"] = encode(flat_grey, "JPEG", quality=100, subsampling=0)
    cases["greyscale"] = encode(Image.fromarray(photo).convert("L"), "JPEG", quality=90)
    cases["cmyk"] = encode(Image.fromarray(photo).convert("CMYK"), "JPEG", quality=90)
    cases["exif orientation 6"] = oriented_jpeg(6)
    big = np.array(Image.fromarray(photo).resize((1024, 768)))
    cases["large (reduced decode)"] = encode(big, "JPEG", quality=90)
    cases["large progressive (reduced decode)"] = encode(big, "JPEG", quality=90, progressive=True)
    return cases


GOOD = _good_jpegs()
CORRUPT = corrupt_jpegs()


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_jpegs_decode_on_every_path(name: str) -> None:
    data = GOOD[name]
    image = decode_image_rgb(data, name)
    assert image.ndim == 3 and image.shape[2] == 3
    decode_for_model(data, 32, 32, name)  # a large file takes the 1/8 reduced decode here
    decode_for_model(data, 96, 96, name)
    decode_for_display_and_model(data, 32, 32, name)


@pytest.mark.parametrize("name", sorted(CORRUPT))
@pytest.mark.parametrize("path", ["full", "model", "reduced"])
def test_corrupt_jpegs_are_refused_with_the_reason(name: str, path: str) -> None:
    data = CORRUPT[name]
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None  # OpenCV alone says nothing
    with pytest.raises(ImageReadError) as caught:
        if path == "full":
            decode_image_rgb(data, name)
        elif path == "model":
            decode_for_model(data, 224, 224, name)
        else:
            decode_for_model(data, 32, 32, name)  # 256 px: decoded at 1/8 size
    assert str(caught.value) == f"{name}: {CORRUPT_JPEG}"
    assert all(word in CORRUPT_JPEG for word in CORRUPT_JPEG_WORDS)


def test_a_large_corrupt_jpeg_is_refused_by_the_reduced_decode() -> None:
    """The batch path decodes large JPEGs at 1/2-1/8 size; the check runs at that size too."""
    data = encode(np.array(Image.fromarray(photo_like()).resize((1024, 768))), "JPEG", quality=90)
    cut = data[: len(data) // 2] + b"\xff\xd9"
    for size in (32, 64, 128, 384):
        with pytest.raises(ImageReadError, match="corrupt JPEG data"):
            decode_for_model(cut, size, size, "big.jpg")
