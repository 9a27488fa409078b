"""Fuzz the image decoders: whatever the bytes, an RGB uint8 array or one ImageReadError line.

Two kinds of input: arbitrary bytes, and small valid PNG/JPEG/GIF/BMP/TIFF/WebP files
mutated the way damaged or hostile files are (bit flips, truncation, inserted and
deleted bytes, and width/height header fields set to 0, 1 or huge values). Every
input goes through both decode_image_rgb and decode_for_model, the two functions every
file from a user passes through. Inputs that once failed are replayed from
regressions/images on every run.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from fuzz_support import fuzz_settings, keep_failure, regression_files
from hypothesis import given
from hypothesis import strategies as st

from convnet_common.imaging import MAX_IMAGE_PIXELS, ImageReadError, decode_for_model, decode_image_rgb

NAME = "fuzz-input.bin"


def _picture(height: int = 20, width: int = 24) -> np.ndarray:
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    image[: height // 2, : width // 2] = (250, 10, 10)
    return image


def _cv2_encoded(extension: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(extension, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params or [])
    assert ok, extension
    return buffer.tobytes()


def _pillow_encoded(build: Callable[[], tuple[object, dict]]) -> bytes:
    image, options = build()
    out = io.BytesIO()
    image.save(out, **options)
    return out.getvalue()


def _seeds() -> dict[str, bytes]:
    """Small valid files of every format and odd mode the app reads."""
    from PIL import Image

    rgb = _picture()
    seeds = {
        "png": _cv2_encoded(".png", rgb),
        "png-grey16": cv2.imencode(".png", (rgb[..., 0].astype(np.uint16) * 257))[1].tobytes(),
        "jpeg": _cv2_encoded(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 80]),
        "jpeg-progressive": _cv2_encoded(".jpg", rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        "bmp": _cv2_encoded(".bmp", rgb),
        "tiff": _cv2_encoded(".tiff", rgb),
        "webp": _cv2_encoded(".webp", rgb, [cv2.IMWRITE_WEBP_QUALITY, 80]),
    }
    pil = Image.fromarray(rgb)
    rgba = np.dstack([rgb, np.where(np.arange(24) < 12, 0, 255).astype(np.uint8)[None, :].repeat(20, 0)])
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    frames = [pil.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), Image.fromarray(rgb[::-1]).convert("P")]
    seeds |= {
        "png-rgba": _pillow_encoded(lambda: (Image.fromarray(rgba, "RGBA"), {"format": "PNG"})),
        "png-palette-trns": _pillow_encoded(lambda: (frames[0], {"format": "PNG", "transparency": 0})),
        "gif-animated": _pillow_encoded(
            lambda: (frames[0], {"format": "GIF", "save_all": True, "append_images": frames[1:], "duration": 50})
        ),
        "jpeg-cmyk": _pillow_encoded(lambda: (pil.convert("CMYK"), {"format": "JPEG"})),
        "jpeg-exif": _pillow_encoded(lambda: (pil, {"format": "JPEG", "exif": exif.tobytes()})),
        "jpeg-grey": _pillow_encoded(lambda: (pil.convert("L"), {"format": "JPEG"})),
    }
    return seeds


SEEDS = _seeds()


def _size_fields(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, length, byte order) of the width/height fields in a seed's header."""
    if data.startswith(b"\x89PNG"):
        return [(16, 4, "big"), (20, 4, "big")]
    if data.startswith(b"GIF"):
        fields = [(6, 2, "little"), (8, 2, "little")]
        descriptor = data.find(b"\x2c", 13)
        return fields + ([(descriptor + 5, 2, "little"), (descriptor + 7, 2, "little")] if descriptor > 0 else [])
    if data.startswith(b"BM"):
        return [(18, 4, "little"), (22, 4, "little")]
    if data.startswith(b"\xff\xd8"):
        sof = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
        return [(sof + 5, 2, "big"), (sof + 7, 2, "big")] if sof > 0 else []
    if data.startswith(b"RIFF") and data[12:16] == b"VP8 ":
        return [(26, 2, "little"), (28, 2, "little")]
    if data.startswith(b"RIFF") and data[12:16] == b"VP8L":
        return [(21, 4, "little")]
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return []  # TIFF sizes live in tags; bit flips and header writes reach them
    return []


SIZE_VALUES = [0, 1, 2, 255, 0x7FFF, 0xFFFF, 100_000, 0x7FFFFFFF, 0xFFFFFFFF]


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 3))):
        # Size fields are where hostile files differ from damaged ones: weight them up.
        kind = draw(st.sampled_from(["size", "size", "size", "flip", "truncate", "header", "insert", "delete"]))
        if not data:
            break
        if kind == "flip":
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "size" and (fields := _size_fields(bytes(data))):
            offset, length, order = draw(st.sampled_from(fields))
            value = draw(st.sampled_from(SIZE_VALUES)) % (1 << (8 * length))
            if offset + length <= len(data):
                data[offset : offset + length] = value.to_bytes(length, order)
        elif kind == "header":
            offset = draw(st.integers(0, min(63, len(data) - 1)))
            data[offset : offset + 4] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "insert":
            offset = draw(st.integers(0, len(data)))
            data[offset:offset] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            start = draw(st.integers(0, len(data) - 1))
            del data[start : start + draw(st.integers(1, 32))]
    return bytes(data)


def check_decoders(data: bytes, height: int = 16, width: int = 16) -> None:
    """The property: an RGB uint8 image of a sane size, or ImageReadError with one line naming the file."""
    try:
        _check(lambda: decode_image_rgb(data, NAME), None)
        _check(lambda: decode_for_model(data, height, width, NAME), (height, width))
    except Exception:
        kept = keep_failure("images", data)
        if kept is not None:
            print(f"input kept in {kept}")
        raise


def _check(decode: Callable[[], np.ndarray], size: tuple[int, int] | None) -> None:
    try:
        image = decode()
    except ImageReadError as error:
        message = str(error)
        assert message.startswith(NAME) and "\n" not in message and len(message) < 300, message
        return
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8, type(image)
    assert image.ndim == 3 and image.shape[2] == 3, image.shape
    assert image.shape[0] >= 1 and image.shape[1] >= 1, image.shape
    assert image.shape[0] * image.shape[1] <= MAX_IMAGE_PIXELS, image.shape
    if size is not None:
        assert image.shape[:2] == size, image.shape


def test_every_seed_decodes() -> None:
    """The mutations start from files the decoders read; otherwise the fuzzing proves little."""
    for name, data in SEEDS.items():
        image = decode_image_rgb(data, name)
        assert image.dtype == np.uint8 and image.shape[2] == 3, name


@fuzz_settings(200)
@given(data=st.binary(max_size=2048), height=st.integers(1, 64), width=st.integers(1, 64))
def test_arbitrary_bytes(data: bytes, height: int, width: int) -> None:
    check_decoders(data, height, width)


@fuzz_settings(200)
@given(data=mutated_images(), height=st.integers(1, 64), width=st.integers(1, 64))
def test_mutated_valid_images(data: bytes, height: int, width: int) -> None:
    check_decoders(data, height, width)


def test_every_size_field_at_every_extreme() -> None:
    """Not random: each seed's width and height fields set to each extreme value, one at a time."""
    for data in SEEDS.values():
        for offset, length, order in _size_fields(data):
            for value in SIZE_VALUES:
                changed = bytearray(data)
                changed[offset : offset + length] = (value % (1 << (8 * length))).to_bytes(length, order)
                check_decoders(bytes(changed))


@pytest.mark.parametrize("path", regression_files("images", ".bin"), ids=lambda p: p.name)
def test_kept_regressions(path) -> None:
    data = path.read_bytes()
    for height, width in ((16, 16), (7, 300)):
        check_decoders(data, height, width)


def test_regressions_folder_is_not_empty() -> None:
    assert regression_files("images", ".bin"), "tests/fuzz/regressions/images holds no inputs"
