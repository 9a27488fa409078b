"""Image decoding and resizing shared by training and the desktop app.

Both sides must turn a file into model input the same way, or a model that scored well
in training quietly does worse in the app. OpenCV does the work: it reads JPEG, PNG,
GIF (first frame), BMP, TIFF, WebP and PNM, applies EXIF orientation, and is fast.

Files come from strangers, so nothing reaches OpenCV unchecked: the header's pixel
count is checked against MAX_IMAGE_PIXELS before anything is allocated, a JPEG without
its end-of-image marker is refused (a silently half-grey picture is worse than an
error), so is one whose scan data libjpeg had to guess at (jpeg_integrity), and every failure, OpenCV's own exceptions included, becomes one ImageReadError
line that names the file and says what is wrong. Transparent pixels are composited over
TRANSPARENT_BACKGROUND (white), as an image viewer shows them; only files whose header
declares transparency take that path.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# OpenCV's own pixel limit, read once when cv2 loads: set it to ours where we load it
# first (the header checks below are the guard that always applies).
MAX_IMAGE_PIXELS = 120_000_000
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))

import cv2  # noqa: E402 - after OpenCV's pixel limit is set above
import numpy as np  # noqa: E402 - after OpenCV's pixel limit is set above

from convnet_common.image_headers import (  # noqa: E402 - after OpenCV's pixel limit is set above
    UNSUPPORTED_FORMATS,
    HeaderInfo,
    describe_non_image,
    exif_orientation,
    inspect_header,
    png_chunks_complete,
    png_exif,
    png_grey_transparent_value,
    webp_exif,
)
from convnet_common.jpeg_integrity import jpeg_intact  # noqa: E402 - after OpenCV's pixel limit is set above
from convnet_common.resize_mode import (  # noqa: E402 - after OpenCV's pixel limit is set above
    STRETCHED,
    ResizeMode,
    crop_box,
    reduced_crop_box,
)

# Every decode failure is reported as an ImageReadError; OpenCV's duplicate log lines
# on stderr would break "one line per bad file". OPENCV_LOG_LEVEL brings them back.
if "OPENCV_LOG_LEVEL" not in os.environ:
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # an OpenCV build without the logging module
        pass

# A file larger than this is not read at all (a 120-megapixel 16-bit RGBA TIFF is ~1 GB).
MAX_IMAGE_FILE_BYTES = 1 << 30
# What transparent pixels become (RGB): white, as image viewers and browsers show them.
TRANSPARENT_BACKGROUND = (255, 255, 255)


def _opencv_reads_gif() -> bool:
    """OpenCV reads GIF from 4.11 on; probe once with a 1x1 image."""
    tiny = (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00\x00"
        b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )
    try:
        return cv2.imdecode(np.frombuffer(tiny, np.uint8), cv2.IMREAD_COLOR) is not None
    except cv2.error:
        return False


OPENCV_READS_GIF = _opencv_reads_gif()
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm", ".pnm"}
    | ({".gif"} if OPENCV_READS_GIF else set())
)


class ImageReadError(Exception):
    """A file that could not be turned into an RGB image; the message says why in one line."""


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether a folder scan should pick this file up (by extension; contents are checked on read)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _too_many_pixels(name: str, size: tuple[int, int] | None) -> ImageReadError:
    limit = f"the limit of {MAX_IMAGE_PIXELS // 1_000_000} megapixels"
    if size is None:
        return ImageReadError(f"{name}: the image is above {limit}")
    return ImageReadError(f"{name}: the image is {size[0]} x {size[1]} pixels, above {limit}")


def _undecodable(data: bytes, info: HeaderInfo, name: str) -> ImageReadError:
    """The one-line reason for bytes OpenCV could not decode, by what the header says they are."""
    fmt = info.format
    if fmt is None:
        return ImageReadError(f"{name}: {describe_non_image(data)}")
    if fmt in UNSUPPORTED_FORMATS or (fmt == "GIF" and not OPENCV_READS_GIF):
        return ImageReadError(f"{name}: not a readable image: {fmt} files are not supported (convert to JPEG or PNG)")
    return ImageReadError(f"{name}: not a readable image: corrupt or truncated {fmt} data")


def _inspect(data: bytes, name: str) -> HeaderInfo:
    """Refuse what can be refused before decoding: empty, too many pixels, truncated JPEG."""
    if not data:
        raise ImageReadError(f"{name}: the file is empty (0 bytes)")
    info = inspect_header(data)
    if info.size is not None and info.size[0] * info.size[1] > MAX_IMAGE_PIXELS:
        raise _too_many_pixels(name, info.size)
    if info.format == "PNG" and not png_chunks_complete(data):
        raise ImageReadError(f"{name}: not a readable image: corrupt or truncated PNG data")
    if info.jpeg_scan is not None:
        # Scan data stuffs every 0xFF with 0x00, so FFD9 after the scan starts is the real
        # end marker; without it the picture would come out partly grey.
        if data.rfind(b"\xff\xd9") < info.jpeg_scan:
            raise ImageReadError(f"{name}: not a readable image: truncated JPEG data (no end-of-image marker)")
    return info


def _imdecode(data: bytes, flag: int, info: HeaderInfo, name: str, check: bool = True) -> np.ndarray:
    """cv2.imdecode with every failure (None, cv2.error, memory) turned into ImageReadError.

    A JPEG whose scan data the decoder had to guess at (see jpeg_integrity) is a failure
    too, unless `check` is False because the same bytes were already checked.
    """
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    except cv2.error as error:
        if "CV_IO_MAX_IMAGE" in str(error):
            raise _too_many_pixels(name, info.size) from None
        raise _undecodable(data, info, name) from None
    except MemoryError:
        raise ImageReadError(f"{name}: the image is too large to decode in the memory available") from None
    if image is None or image.size == 0:
        raise _undecodable(data, info, name)
    if check and info.jpeg_scan is not None and not jpeg_intact(data, info.jpeg_scan, flag, image):
        raise ImageReadError(f"{name}: {CORRUPT_JPEG}")
    return image


CORRUPT_JPEG = "not a readable image: corrupt JPEG data (the decoder had to guess at part of the picture)"


def _to_uint8(image: np.ndarray) -> np.ndarray | None:
    """8-bit copy of a 16-bit or float decode (16-bit keeps its top byte, as IMREAD_COLOR does)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype in (np.float32, np.float64):
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return None


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright by EXIF orientation 1-8 (as OpenCV does for IMREAD_COLOR)."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def _over_background(bgra: np.ndarray, premultiplied: bool) -> np.ndarray:
    """Composite 8-bit BGRA over TRANSPARENT_BACKGROUND; BGR out."""
    colour, alpha = bgra[..., :3].astype(np.uint16), bgra[..., 3:4].astype(np.uint16)
    background = np.array(TRANSPARENT_BACKGROUND[::-1], np.uint16)
    if premultiplied:
        out = colour + (background * (255 - alpha) + 127) // 255
        return np.minimum(out, 255).astype(np.uint8)
    # Fits uint16: colour * a + bg * (255 - a) <= 255 * 255.
    return ((colour * alpha + background * (255 - alpha) + 127) // 255).astype(np.uint8)


def _decode_transparent(data: bytes, info: HeaderInfo, name: str) -> np.ndarray:
    """BGR of a file with transparency: decoded with its alpha, composited, turned upright."""
    raw = _imdecode(data, cv2.IMREAD_UNCHANGED, info, name)
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    alpha = None
    if raw.ndim == 2 and info.format == "PNG":
        # OpenCV drops a grey PNG's tRNS colour key; rebuild the alpha from it.
        key = png_grey_transparent_value(data)
        if key is not None:
            alpha = np.where(raw == key, 0, 255).astype(np.uint8)
    image = _to_uint8(raw)
    if image is None:  # an unusual sample type: the plain decode, transparency ignored
        return _imdecode(data, cv2.IMREAD_COLOR, info, name)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 2:
        alpha = image[..., 1]
        image = cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    elif image.shape[2] > 4:
        image = image[..., :4]
    if alpha is not None:
        image = np.dstack([image, alpha])
    if image.shape[2] == 4:
        if image[..., 3].min() == 255:
            image = np.ascontiguousarray(image[..., :3])
        else:
            image = _over_background(image, info.premultiplied_8bit and raw.dtype == np.uint8)
    # IMREAD_UNCHANGED skips EXIF orientation (TIFF aside, which libtiff turns itself).
    exif = png_exif(data) if info.format == "PNG" else webp_exif(data) if info.format == "WebP" else None
    return _orient(image, exif_orientation(exif)) if exif else image


def decode_image_rgb(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes to an HxWx3 uint8 RGB array, or raise ImageReadError."""
    return _decode_rgb(data, _inspect(data, name), name)


def _decode_rgb(data: bytes, info: HeaderInfo, name: str) -> np.ndarray:
    if info.alpha:
        image = _decode_transparent(data, info, name)
    else:
        # IMREAD_COLOR converts grey, palette and CMYK to 3 channels, scales 16-bit to
        # 8-bit and applies the EXIF orientation that phone photos rely on.
        image = _imdecode(data, cv2.IMREAD_COLOR, info, name)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


_REDUCTIONS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def _reduction_flag(info: HeaderInfo, height: int, width: int, resize: ResizeMode = STRETCHED) -> int | None:
    """The IMREAD_REDUCED_COLOR_* flag to decode a large JPEG at 1/2, 1/4 or 1/8 size, or None.

    libjpeg scales inside the inverse DCT, so a reduced decode costs a fraction of a full
    one and is itself an area average. The factor is chosen so the short side of the part
    the model sees (the whole image, or the crop box) still covers the model's longer
    side, whichever way EXIF orientation turns the picture; the final resize does the rest.
    """
    if info.format != "JPEG" or info.size is None:
        return None
    stored_width, stored_height = info.size
    boxes = (
        crop_box(stored_height, stored_width, height, width, resize),
        crop_box(stored_width, stored_height, height, width, resize),
    )
    short_side, needed = min(min(box[2:]) for box in boxes), max(height, width, 1)
    for factor, flag in _REDUCTIONS:
        if short_side >= factor * needed:
            return flag
    return None


def _reduced_input(
    data: bytes,
    info: HeaderInfo,
    flag: int,
    height: int,
    width: int,
    name: str,
    check: bool = True,
    resize: ResizeMode = STRETCHED,
) -> np.ndarray:
    image = _imdecode(data, flag, info, name, check)
    if resize.crops:
        factor = next(f for f, reduction in _REDUCTIONS if reduction == flag)
        top, left, box_height, box_width = reduced_crop_box(info.size, image.shape[:2], factor, height, width, resize)
        image = image[top : top + box_height, left : left + box_width]
    if image.shape[0] < 2 * height and image.shape[1] < 2 * width:
        # libjpeg's scaled IDCT has already averaged each block, so what is left is a
        # shrink by less than 2: bilinear is as close to the full-size area resize as a
        # second area pass (a grey level on average) at half its cost.
        small = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    else:  # a very wide or tall picture: the long side still shrinks a lot
        small = resize_for_model(image, height, width)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def decode_for_model(
    data: bytes, height: int, width: int, name: str = "image", resize: ResizeMode = STRETCHED
) -> np.ndarray:
    """Decode encoded bytes straight to the model's HxWx3 uint8 RGB input.

    This is the one definition of "what the network sees" for a file: training, the
    Classify tab and batch runs all call it, so a file scores the same everywhere.
    `resize` is the model's resize mode (stretch, or shorter-side resize and centre crop).
    """
    info = _inspect(data, name)
    flag = _reduction_flag(info, height, width, resize)
    if flag is None:
        return fit_to_model(_decode_rgb(data, info, name), height, width, resize)
    return _reduced_input(data, info, flag, height, width, name, resize=resize)


def decode_for_display_and_model(
    data: bytes, height: int, width: int, name: str = "image", resize: ResizeMode = STRETCHED
) -> tuple[np.ndarray, np.ndarray]:
    """(full RGB image, model input) from one file's bytes, decoding twice only when it pays.

    The model input is exactly decode_for_model's; only a large JPEG gets a second,
    reduced decode for it, everything else is resized from the full image.
    """
    info = _inspect(data, name)
    image = _decode_rgb(data, info, name)
    flag = _reduction_flag(info, height, width, resize)
    if flag is None:
        return image, fit_to_model(image, height, width, resize)
    # The full decode has checked the JPEG's scan data already.
    return image, _reduced_input(data, info, flag, height, width, name, check=False, resize=resize)


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _read_error(path: Path, error: OSError) -> ImageReadError:
    if isinstance(error, IsADirectoryError):
        return ImageReadError(f"{path}: is a folder, not an image file")
    if isinstance(error, FileNotFoundError):
        if os.path.islink(path):
            return ImageReadError(f"{path}: broken symbolic link (its target does not exist)")
        return ImageReadError(f"{path}: file not found")
    if isinstance(error, PermissionError):
        if os.path.isdir(path):  # Windows refuses to open folders this way
            return ImageReadError(f"{path}: is a folder, not an image file")
        return ImageReadError(f"{path}: permission denied")
    if error.errno == errno.ELOOP:
        return ImageReadError(f"{path}: symbolic link loop (the link points back at itself)")
    if error.errno == errno.ENAMETOOLONG:  # e.g. a folder nested ~2,000 deep (PATH_MAX)
        return ImageReadError(f"{path}: the path is longer than the system allows (PATH_MAX); move it higher up")
    return ImageReadError(f"{path}: cannot be read ({error.strerror or error})")


def read_image_bytes(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes, or ImageReadError saying in one line why they cannot be read.

    Only regular files are read: a named pipe would block forever and a device never
    ends. The open is non-blocking for the same reason; size is checked before reading.
    """
    path = Path(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        raise _read_error(path, error) from None
    except ValueError:  # a NUL character: no file can have this name
        raise ImageReadError(f"{path!r}: not a valid file name") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageReadError(f"{path}: is a folder, not an image file")
        if not stat.S_ISREG(info.st_mode):
            raise ImageReadError(f"{path}: not a regular file (a pipe, socket or device)")
        if info.st_size > MAX_IMAGE_FILE_BYTES:
            raise ImageReadError(
                f"{path}: the file is {info.st_size / 2**30:.1f} GB, above the limit of "
                f"{MAX_IMAGE_FILE_BYTES / 2**30:.0f} GB for an image"
            )
        with os.fdopen(fd, "rb", buffering=0, closefd=True) as handle:
            fd = -1
            data = handle.readall()  # sized from fstat: one allocation, no copy
    except OSError as error:
        raise _read_error(path, error) from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_IMAGE_FILE_BYTES:  # it grew while being read
        limit = MAX_IMAGE_FILE_BYTES / 2**30
        raise ImageReadError(f"{path}: the file is above the limit of {limit:.0f} GB for an image")
    return data


def load_image_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file (any path, including non-ASCII names) as HxWx3 uint8 RGB."""
    return decode_image_rgb(read_image_bytes(path), str(path))


def load_image_for_model(
    path: str | os.PathLike[str], height: int, width: int, resize: ResizeMode = STRETCHED
) -> np.ndarray:
    """Read an image file as the model's HxWx3 uint8 RGB input (see decode_for_model)."""
    return decode_for_model(read_image_bytes(path), height, width, str(path), resize)


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


def fit_to_model(image: np.ndarray, height: int, width: int, resize: ResizeMode = STRETCHED) -> np.ndarray:
    """An in-memory RGB image as the model's input under its resize mode (resize_mode.crop_box)."""
    top, left, box_height, box_width = crop_box(image.shape[0], image.shape[1], height, width, resize)
    return resize_for_model(image[top : top + box_height, left : left + box_width], height, width)
