"""A corpus of awkward and broken image files, generated (never downloaded) for any test.

`build_corpus(folder)` writes every case from issue 6 into `folder` and returns a Case
per entry saying what must happen to it: classify (as a known colour when the picture
is mostly red, green or blue, so the colour model in tests/desktop recognises it, and
decode to a known upright picture where that is the point), or fail with a message
containing given words. Everything here is deterministic and small (the corpus is
~40 files, a few hundred KB).

Cases the operating system makes awkward:
- "permission denied": tests run as root, who reads a mode-000 file anyway; so the file
  is written readable and `deny_reading` makes os.open refuse it (EACCES) in-process,
  the boundary the loader itself calls. test_bad_images.py also checks the real thing
  where the platform allows it.
- "deleted while a batch runs": `vanish_on_first_read` deletes a file the moment the run
  opens its first other file, i.e. after the folder was listed and before that file is
  read — deterministic, with no sleeps.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

RED, GREEN, BLUE = (230, 20, 20), (20, 220, 20), (20, 20, 230)
COLOURS = {"red": RED, "green": GREEN, "blue": BLUE}
SIZE = 64
LOOP_FOLDER = "loop"  # a symlink to the corpus folder itself
UNREADABLE = "unreadable.jpg"
VANISHING = "zz-vanishing.png"  # sorts last: still unread when the batch starts


@dataclass(frozen=True)
class Case:
    """What must happen to one corpus entry.

    `words`: the entry must fail, with every word in its message (which also names the
    file). Otherwise it must classify — as `colour` when that is set — and decode to
    `upright` (RGB, within `tolerance` grey levels on average) when that is set.
    `listed`: a folder scan returns it (False for the symlink loop, a folder).
    """

    name: str
    colour: str | None = None
    words: tuple[str, ...] = ()
    upright: np.ndarray | None = field(default=None, compare=False, repr=False)
    tolerance: float = 1.0
    listed: bool = True

    @property
    def must_fail(self) -> bool:
        return bool(self.words)


def mostly(colour: tuple[int, int, int], size: int = SIZE) -> np.ndarray:
    """A dark picture three-quarters filled with `colour` (what the colour model reads)."""
    image = np.full((size, size, 3), 20, np.uint8)
    image[: size * 3 // 4, : size * 3 // 4] = colour
    return image


def encode(image: Image.Image | np.ndarray, fmt: str, **options) -> bytes:
    """Encode with Pillow (arrays are RGB/RGBA/L)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def over_white(rgba: np.ndarray) -> np.ndarray:
    """The reference composite: straight alpha over white, rounded, as RGB uint8."""
    colour, alpha = rgba[..., :3].astype(np.float64), rgba[..., 3:4].astype(np.float64) / 255.0
    return np.rint(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def hidden_blue_rgba() -> np.ndarray:
    """A red square on a background that is blue but fully transparent.

    Dropping the alpha shows a mostly blue picture; compositing over white shows red on
    white, which the colour model reads as red. A half-transparent green band checks
    the blend itself.
    """
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[...] = (*BLUE, 0)
    rgba[8:32, 8:32] = (*RED, 255)
    rgba[40:48, :] = (*GREEN, 128)
    return rgba


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_with_size(width: int, height: int) -> bytes:
    """A valid small PNG whose IHDR (CRC fixed) claims width x height."""
    data = bytearray(encode(mostly(RED, 16), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _flip(data: bytes, offset: int) -> bytes:
    """`data` with the byte at `offset` inverted (the IHDR CRC at 29: libpng complains on stderr)."""
    return data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :]


def _stray_bytes_jpeg() -> bytes:
    """A JPEG with three junk bytes before a marker: libjpeg warns on stderr, the picture is intact."""
    data = encode(mostly(RED), "JPEG", quality=95)
    marker = data.index(b"\xff\xdb")
    return data[:marker] + b"\x00\x11\x22" + data[marker:]


def _png_chunk_length_bomb() -> bytes:
    """A small PNG whose IDAT length field claims ~3.4 GB (OpenCV used to reserve it)."""
    data = bytearray(encode(mostly(RED, 16), "PNG"))
    idat = data.index(b"IDAT") - 4
    data[idat : idat + 4] = struct.pack(">I", 3_387_162_813)
    return bytes(data)


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(mostly(RED, 16), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(mostly(RED, 16), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _gif_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(mostly(RED, 16), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def _tiff_with_size(width: int, height: int) -> bytes:
    # Pillow writes the width and length tags as SHORTs; rewrite both as LONGs.
    data = bytearray(encode(mostly(RED, 16), "TIFF"))
    order = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack_from(order + "I", data, 4)[0]
    for index in range(struct.unpack_from(order + "H", data, ifd)[0]):
        entry = ifd + 2 + 12 * index
        tag = struct.unpack_from(order + "H", data, entry)[0]
        if tag in (256, 257):
            struct.pack_into(order + "HHII", data, entry, tag, 4, 1, width if tag == 256 else height)
    return bytes(data)


def _webp_with_size(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP whose canvas claims width x height around a tiny frame."""
    frame = encode(mostly(RED, 16), "WEBP", lossless=True)[12:]  # the VP8L chunk
    vp8x = (
        b"VP8X"
        + struct.pack("<I", 10)
        + b"\x00\x00\x00\x00"
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright_reference() -> np.ndarray:
    """An asymmetric, mostly red picture (wider than tall): every orientation looks different."""
    image = np.full((48, 80, 3), RED, np.uint8)
    image[:16, :24] = GREEN  # top-left corner block
    image[32:, 56:] = BLUE  # bottom-right corner block
    image[:, 40:44] = (240, 240, 240)  # a bar right of centre
    return image


def oriented_jpeg(orientation: int) -> bytes:
    """A JPEG whose stored pixels become `upright_reference()` only once `orientation` is applied."""
    upright = Image.fromarray(upright_reference())
    inverse = {6: 8, 8: 6}.get(orientation, orientation)  # 2-5 and 7 undo themselves
    stored = upright.transpose(_TRANSPOSE[inverse]) if inverse != 1 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    check = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert check.shape == upright_reference().shape, "the corpus itself is wrong"
    return data


def _transparent_cases() -> dict[str, tuple[bytes, np.ndarray]]:
    rgba = hidden_blue_rgba()
    palette = np.zeros((SIZE, SIZE), np.uint8)
    palette[8:40, 8:40] = 1  # index 0: blue, transparent; index 1: opaque red
    indexed = Image.fromarray(palette, "P")
    indexed.putpalette([*BLUE, *RED] + [0] * 762)
    palette_rgba = np.where(palette[..., None] == 1, np.array([*RED, 255], np.uint8), np.array([*BLUE, 0], np.uint8))
    gif_frames = [indexed, Image.fromarray(np.ones((SIZE, SIZE), np.uint8), "P")]
    gif_frames[1].putpalette([*BLUE, *BLUE] + [0] * 762)
    grey = np.full((SIZE, SIZE), 90, np.uint8)
    grey[:, : SIZE // 2] = 0  # the transparent grey level
    grey_rgba = np.dstack([grey, grey, grey, np.where(grey == 0, 0, 255).astype(np.uint8)])
    buffer = io.BytesIO()
    gif_frames[0].save(buffer, "GIF", save_all=True, append_images=gif_frames[1:], transparency=0, duration=100, loop=0)
    return {
        "rgba transparent.png": (encode(rgba, "PNG"), over_white(rgba)),
        "palette-trns.png": (encode(indexed, "PNG", transparency=0), over_white(palette_rgba)),
        "grey-trns.png": (encode(Image.fromarray(grey, "L"), "PNG", transparency=0), over_white(grey_rgba)),
        "rgba.webp": (encode(rgba, "WEBP", lossless=True, exact=True), over_white(rgba)),
        "rgba.tif": (encode(rgba, "TIFF"), over_white(rgba)),
        "animated transparent.gif": (buffer.getvalue(), over_white(palette_rgba)),
    }


def photo_like(size: int = 256) -> np.ndarray:
    """A deterministic RGB picture with gradients and noise, so its scan data looks like a photo's."""
    y, x = np.mgrid[0:size, 0:size]
    image = np.dstack([x * 255 // size, y * 255 // size, (x + y) * 127 // size])
    noise = np.random.default_rng(5).integers(-20, 20, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _scan_offset(data: bytes, fraction: float) -> int:
    """The offset `fraction` of the way through a JPEG's scan data (after the first scan header)."""
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    return start + int((len(data) - start) * fraction)


def corrupt_jpegs() -> dict[str, bytes]:
    """The issue's corrupt-but-decodable JPEGs: each decodes, partly guessed (grey or garbled).

    400 zeroed bytes, 400 random bytes, or a cut with the end marker put back, 40 % into
    the scan data, for baseline, progressive and restart-marker files.
    """
    noise = bytes(np.random.default_rng(3).integers(0, 256, 400, dtype=np.uint8))
    cases = {}
    for kind, options in (("", {}), (" progressive", {"progressive": True}), (" restarts", {"restart_marker_rows": 1})):
        data = encode(photo_like(), "JPEG", quality=90, **options)
        at = _scan_offset(data, 0.4)
        cases[f"corrupt zeroed scan{kind}.jpg"] = data[:at] + bytes(400) + data[at + 400 :]
        if kind != " progressive":  # libjpeg already stops at this one's random bytes (an error today)
            cases[f"corrupt random scan{kind}.jpg"] = data[:at] + noise + data[at + 400 :]
        cases[f"corrupt cut with end marker{kind}.jpg"] = data[:at] + b"\xff\xd9"
    return cases


CORRUPT_JPEG_WORDS = ("corrupt JPEG data", "had to guess")


def _bad_bytes() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """Files that must fail, with the words their message must contain."""
    photo = encode(mostly(RED, 256), "JPEG", quality=90)
    progressive = encode(mostly(GREEN, 256), "JPEG", quality=90, progressive=True)
    png = encode(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8), "PNG")
    gif = encode(mostly(BLUE), "GIF")
    noise = bytes(np.random.default_rng(2).integers(0, 256, 2048, dtype=np.uint8))
    return {
        "empty.jpg": (b"", ("empty",)),
        "truncated in header.jpg": (photo[:120], ("truncated", "JPEG")),
        "truncated mid-scan.jpg": (photo[: len(photo) * 6 // 10], ("truncated", "JPEG")),
        "truncated before end marker.jpg": (photo[:-2], ("truncated", "JPEG")),
        "truncated progressive.jpg": (progressive[: len(progressive) // 2], ("truncated", "JPEG")),
        "truncated.png": (png[: len(png) // 2], ("truncated", "PNG")),
        "truncated.gif": (gif[: len(gif) // 2], ("truncated", "GIF")),
        "text.jpg": (b"This is a shopping list, not a photo.\nmilk\neggs\n", ("not a readable image", "text")),
        "page.jpg": (
            b"<!DOCTYPE html>\n<html><body><img src='cat.jpg'></body></html>\n",
            ("not a readable image", "HTML"),
        ),
        "random bytes.png": (noise, ("unrecognised file format",)),
        "huge 100000.png": (_png_with_size(100_000, 100_000), ("100000 x 100000", "megapixels")),
        # Under the pixel limit, but more pixels than its few bytes could ever inflate to.
        "size lie.png": (_png_with_size(10_000, 10_000), ("corrupt or truncated", "PNG")),
        "chunk length bomb.png": (_png_chunk_length_bomb(), ("corrupt or truncated", "PNG")),
        "bad crc.png": (_flip(encode(mostly(RED, 16), "PNG"), 29), ("corrupt or truncated", "PNG")),
        "huge 60000.jpg": (_jpeg_with_size(60_000, 60_000), ("60000 x 60000", "megapixels")),
        "huge.bmp": (_bmp_with_size(100_000, 100_000), ("100000 x 100000", "megapixels")),
        "huge.gif": (_gif_with_size(65_535, 65_535), ("65535 x 65535", "megapixels")),
        "huge.tif": (_tiff_with_size(100_000, 100_000), ("100000 x 100000", "megapixels")),
        "huge.webp": (_webp_with_size(100_000, 100_000), ("100000 x 100000", "megapixels")),
        **{name: (data, CORRUPT_JPEG_WORDS) for name, data in corrupt_jpegs().items()},
    }


def build_corpus(folder: Path) -> dict[str, Case]:
    """Write every case into `folder` (created); return the cases by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Case] = {}

    def add(name: str, data: bytes, **expect) -> None:
        (folder / name).write_bytes(data)
        cases[name] = Case(name, **expect)

    for name, (data, words) in _bad_bytes().items():
        add(name, data, words=words)
    # Good pictures, each in a different awkward form.
    add("red photo.jpg", encode(mostly(RED), "JPEG", quality=95), colour="red")
    add("stray bytes.jpg", _stray_bytes_jpeg(), colour="red", upright=mostly(RED), tolerance=2.0)
    add("grün ä 日本.png", encode(mostly(GREEN), "PNG"), colour="green", upright=mostly(GREEN))
    add("-leading-dash.png", encode(mostly(BLUE), "PNG"), colour="blue", upright=mostly(BLUE))
    add("16bit colour.png", _png16(mostly(RED).astype(np.uint16) * 257), colour="red", upright=mostly(RED))
    # 16-bit samples keep their top byte: 40,000 // 256 = 156.
    add(
        "16bit grey.png",
        _png16(np.full((SIZE, SIZE), 40_000, np.uint16)),
        upright=np.full((SIZE, SIZE, 3), 156, np.uint8),
    )
    grey = np.full((SIZE, SIZE), 30, np.uint8)
    grey[: SIZE // 2] = 200
    add("grey.png", encode(Image.fromarray(grey, "L"), "PNG"), upright=np.dstack([grey] * 3))
    add(
        "grey.jpg", encode(Image.fromarray(grey, "L"), "JPEG", quality=95), upright=np.dstack([grey] * 3), tolerance=2.0
    )
    add(
        "cmyk.jpg",
        encode(Image.fromarray(mostly(GREEN)).convert("CMYK"), "JPEG", quality=95),
        colour="green",
        upright=mostly(GREEN),
        tolerance=6.0,
    )
    frames = [Image.fromarray(mostly(colour)) for colour in (BLUE, RED, GREEN)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    add("animated.gif", buffer.getvalue(), colour="blue", upright=mostly(BLUE), tolerance=2.0)
    for name, (data, upright) in _transparent_cases().items():
        colour = None if name.startswith("grey") else "red"
        add(name, data, colour=colour, upright=upright, tolerance=1.0)
    for orientation in range(1, 9):
        add(
            f"exif orientation {orientation}.jpg",
            oriented_jpeg(orientation),
            colour="red",
            upright=upright_reference(),
            tolerance=4.0,
        )
    add("plain.bmp", encode(mostly(GREEN), "BMP"), colour="green", upright=mostly(GREEN))
    add("plain.tiff", encode(mostly(BLUE), "TIFF"), colour="blue", upright=mostly(BLUE))
    add(UNREADABLE, encode(mostly(RED), "JPEG"), words=("permission denied",))
    # Links and special files.
    os.symlink(folder, folder / LOOP_FOLDER)
    cases[LOOP_FOLDER] = Case(LOOP_FOLDER, listed=False)
    os.symlink("self-loop.jpg", folder / "self-loop.jpg")
    cases["self-loop.jpg"] = Case("self-loop.jpg", words=("symbolic link loop",))
    os.symlink("no-such-target.png", folder / "broken link.png")
    cases["broken link.png"] = Case("broken link.png", words=("broken symbolic link",))
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.jpg")
        cases["pipe.jpg"] = Case("pipe.jpg", words=("not a regular file",))
    return cases


def _png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (grey HxW or RGB HxWx3), written by hand so no library narrows it."""
    height, width = array.shape[:2]
    colour_type = 2 if array.ndim == 3 else 0
    rows = array.astype(">u2").reshape(height, -1).tobytes()
    stride = len(rows) // height
    raw = b"".join(b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def file_cases(cases: dict[str, Case]) -> dict[str, Case]:
    """The cases a folder scan lists: every file (the symlink loop is a folder, not listed)."""
    return {name: case for name, case in cases.items() if case.listed}


def deny_reading(monkeypatch, paths) -> None:
    """Make os.open fail with EACCES for `paths`, as it does for a non-root user on a mode-000 file."""
    denied = {os.path.abspath(p) for p in paths}
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(path)) in denied:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)


def vanish_on_first_read(monkeypatch, victim: Path) -> None:
    """Delete `victim` as soon as another file of its folder is opened: after listing, before its turn."""
    real_open = os.open
    target = os.path.abspath(victim)
    folder = os.path.dirname(target)

    def opening(path, flags, *args, **kwargs):
        opened = os.path.abspath(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else ""
        if opened != target and os.path.dirname(opened) == folder:
            try:
                os.unlink(target)
            except FileNotFoundError:
                pass
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", opening)


def add_vanishing_file(folder: Path) -> Case:
    """A good file that a test deletes mid-run; once deleted it must be reported as not found."""
    (folder / VANISHING).write_bytes(encode(mostly(GREEN), "PNG"))
    return Case(VANISHING, words=("file not found",))
