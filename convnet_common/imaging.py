"""Image decoding and resizing shared by training and the desktop app.

Both sides must turn a file into model input the same way, or a model that scored well
in training quietly does worse in the app. OpenCV does the work: it reads JPEG, PNG,
BMP, TIFF and WebP, applies EXIF orientation, and is fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm", ".pnm"}
)

# Refuse images above this many pixels before decoding them (a 100,000 x 100,000
# header would otherwise ask for 30 GB). 120 megapixels covers any camera in use.
MAX_IMAGE_PIXELS = 120_000_000


class ImageReadError(Exception):
    """A file that could not be turned into an RGB image; the message says why."""


def is_image_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG/JPEG header without decoding pixels, if recognisable."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height = int.from_bytes(data[i + 5 : i + 7], "big")
                width = int.from_bytes(data[i + 7 : i + 9], "big")
                return width, height
            i += 2 + length
    return None


def _check_header(data: bytes, name: str) -> None:
    if not data:
        raise ImageReadError(f"{name}: the file is empty (0 bytes)")
    size = _header_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageReadError(
            f"{name}: the image is {size[0]} x {size[1]} pixels, above the limit of "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels"
        )


def decode_image_rgb(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes to an HxWx3 uint8 RGB array, or raise ImageReadError."""
    _check_header(data, name)
    buffer = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_COLOR converts grey, palette and RGBA to 3 channels, scales 16-bit to 8-bit
    # and applies the EXIF orientation that phone photos rely on.
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f"{name}: not a readable image (unknown format or corrupt data)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _reduction_flag(data: bytes, height: int, width: int) -> int | None:
    """The IMREAD_REDUCED_COLOR_* flag to decode a large JPEG at 1/2, 1/4 or 1/8 size, or None.

    libjpeg scales inside the inverse DCT, so a reduced decode costs a fraction of a full
    one and is itself an area average. The factor is chosen so the short side still covers
    the model's longer side, whichever way EXIF orientation turns the picture; the final
    area resize then does the rest.
    """
    if data[:2] != b"\xff\xd8":
        return None
    size = _header_size(data)
    if size is None:
        return None
    short_side, needed = min(size), max(height, width, 1)
    for factor, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if short_side >= factor * needed:
            return flag
    return None


def decode_for_model(data: bytes, height: int, width: int, name: str = "image") -> np.ndarray:
    """Decode encoded bytes straight to the model's HxWx3 uint8 RGB input.

    This is the one definition of "what the network sees" for a file: training, the
    Classify tab and batch runs all call it, so a file scores the same everywhere.
    """
    flag = _reduction_flag(data, height, width)
    if flag is None:
        return resize_for_model(decode_image_rgb(data, name), height, width)
    _check_header(data, name)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    if image is None:
        raise ImageReadError(f"{name}: not a readable image (unknown format or corrupt data)")
    return resize_for_model(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), height, width)


def read_image_bytes(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes, or ImageReadError saying in one line why they cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image file") from None
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except OSError as error:
        raise ImageReadError(f"{path}: cannot be read ({error.strerror or error})") from None


def load_image_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file (any path, including non-ASCII names) as HxWx3 uint8 RGB."""
    return decode_image_rgb(read_image_bytes(path), str(path))


def load_image_for_model(path: str | os.PathLike[str], height: int, width: int) -> np.ndarray:
    """Read an image file as the model's HxWx3 uint8 RGB input (see decode_for_model)."""
    return decode_for_model(read_image_bytes(path), height, width, str(path))


def resize_for_model(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Stretch an RGB image to the model's input size (no crop, no letterbox).

    Area interpolation when shrinking avoids aliasing; bilinear when enlarging.
    Training uses this exact function, so the app sees what the network saw.
    """
    if image.shape[0] == height and image.shape[1] == width:
        return np.ascontiguousarray(image)
    shrinking = image.shape[0] > height or image.shape[1] > width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)
