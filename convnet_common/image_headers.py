"""What an image file says about itself, read from its first bytes without decoding pixels.

The decoder (convnet_common.imaging) needs three answers before it lets OpenCV near a
file from a stranger: what format it is (for a clear message when decoding fails), how
many pixels its header claims (to refuse a decompression bomb before anything is
allocated), and whether it carries transparency (so that only such files take the
slower compositing path). Every parser here is bounds-checked and returns None for
"cannot tell" rather than raising: a header it does not understand is left to OpenCV.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

# Signatures of the formats OpenCV reads, and of a few it does not (for a clear message).
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"II+\x00", "TIFF"),
    (0, b"MM\x00+", "TIFF"),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG 2000"),
    (0, b"#?RADIANCE", "HDR"),
    (0, b"#?RGBE", "HDR"),
    (0, b"\x59\xa6\x6a\x95", "Sun raster"),
    (0, b"%PDF", "PDF"),
    (0, b"\x00\x00\x01\x00", "ICO"),
)
# Formats recognised only to say so: OpenCV has no decoder for them.
UNSUPPORTED_FORMATS = frozenset({"PDF", "ICO", "HEIC", "SVG"})


@dataclass(frozen=True)
class HeaderInfo:
    """What the first bytes tell: format name (None if unknown), (width, height), alpha."""

    format: str | None
    size: tuple[int, int] | None
    alpha: bool
    # A TIFF with an ExtraSamples tag: OpenCV reads 8-bit ones through libtiff's RGBA
    # interface, which hands the colours over premultiplied by alpha.
    premultiplied_8bit: bool = False
    # A JPEG's first scan (None: not a JPEG, or no scan found), for the truncation check.
    jpeg_scan: int | None = None


def sniff_format(data: bytes) -> str | None:
    """The format name from the file's signature, or None when it matches none we know."""
    for offset, signature, name in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
    if len(data) >= 3 and data[0:1] == b"P" and data[1:2] in b"1234567" and data[2:3] in b" \t\r\n":
        return "PNM"
    if data[:2] in (b"PF", b"Pf") and data[2:3] in b"\r\n":
        return "PFM"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "SVG"
    return None


def describe_non_image(data: bytes) -> str:
    """Why bytes with no image signature are not a picture, in a few words."""
    head = data[:4096]
    try:
        text: str | None = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the 4 KB boundary is still text.
        text = head[: error.start].decode("utf-8") if error.start > len(head) - 4 else None
    if text is None or "\x00" in text:
        return "not a readable image: unrecognised file format"
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in lowered[:1024]:
        return "not a readable image: the file holds HTML text, not a picture"
    return "not a readable image: the file holds text, not a picture"


def _u16(data: bytes, offset: int, order: str) -> int | None:
    if offset < 0 or offset + 2 > len(data):
        return None
    return struct.unpack_from(order + "H", data, offset)[0]


def _u32(data: bytes, offset: int, order: str) -> int | None:
    if offset < 0 or offset + 4 > len(data):
        return None
    return struct.unpack_from(order + "I", data, offset)[0]


def tiff_tags(data: bytes, wanted: frozenset[int], base: int = 0) -> dict[int, int]:
    """First values of the wanted tags in a TIFF structure's first IFD (also EXIF blobs).

    `base` is where the TIFF header starts inside `data`. Only SHORT and LONG values
    are read; anything malformed just ends the walk.
    """
    order = {b"II": "<", b"MM": ">"}.get(data[base : base + 2])
    if order is None or _u16(data, base + 2, order) != 42:
        return {}
    ifd = _u32(data, base + 4, order)
    count = _u16(data, base + (ifd or 0), order) if ifd else None
    found: dict[int, int] = {}
    for index in range(min(count or 0, 512)):
        entry = base + ifd + 2 + 12 * index
        tag, kind = _u16(data, entry, order), _u16(data, entry + 2, order)
        if tag is None or kind is None:
            break
        if tag in wanted:
            value = _u16(data, entry + 8, order) if kind == 3 else _u32(data, entry + 8, order) if kind == 4 else None
            if value is not None:
                found[tag] = value
    return found


def exif_orientation(blob: bytes) -> int:
    """The orientation (1-8) in an EXIF blob (TIFF structure, maybe after 'Exif\\0\\0'); 1 if none."""
    base = 6 if blob[:6] == b"Exif\x00\x00" else 0
    value = tiff_tags(blob, frozenset({0x0112}), base).get(0x0112, 1)
    return value if 1 <= value <= 8 else 1


def _png_chunks(data: bytes):
    """(type, data offset, length) of each PNG chunk, stopping at anything malformed."""
    offset = 8
    while offset + 8 <= len(data):
        length = struct.unpack_from(">I", data, offset)[0]
        kind = data[offset + 4 : offset + 8]
        yield kind, offset + 8, length
        if kind == b"IEND":
            return
        offset += 12 + length


def _png(data: bytes) -> tuple[tuple[int, int] | None, bool]:
    if len(data) < 29 or data[12:16] != b"IHDR":
        return None, False
    size = struct.unpack_from(">II", data, 16)
    alpha = data[25] in (4, 6)
    if not alpha:
        for kind, _, _ in _png_chunks(data):
            if kind == b"tRNS":
                alpha = True
            if kind in (b"tRNS", b"IDAT"):
                break
    return (size[0], size[1]), alpha


# Deflate cannot shrink data by more than 1032:1 (258-byte matches in ~2 bits).
_DEFLATE_MAX_RATIO = 1032
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_chunks_complete(data: bytes) -> bool:
    """Whether every chunk fits inside the file, the last is IEND, and the image data is
    large enough to hold the pixels the header claims.

    A damaged length field can claim gigabytes (a 246-byte file made OpenCV reserve that
    much and spend seconds on it), and a damaged size can claim far more pixels than the
    compressed data could ever expand to. Walking the chunk headers costs microseconds.
    """
    end, compressed = len(data), 0
    for kind, start, length in _png_chunks(data):
        if length > 0x7FFFFFFF or start + length + 4 > end:
            return False
        if kind == b"IDAT":
            compressed += length
        if kind == b"IEND":
            break
    else:
        return False
    if len(data) < 29:
        return False
    width, height = struct.unpack_from(">II", data, 16)
    bits = data[24] * _PNG_CHANNELS.get(data[25], 1)
    smallest_raw = height * (1 + (width * bits + 7) // 8)  # filter byte + packed row, no interlacing
    return (compressed + 1) * _DEFLATE_MAX_RATIO >= smallest_raw


def png_grey_transparent_value(data: bytes) -> int | None:
    """For a greyscale PNG with a tRNS chunk: the transparent grey value, at the decoded depth.

    OpenCV drops this kind of transparency (it returns one grey channel), so the caller
    rebuilds the alpha from it. Bit depths under 8 are scaled as libpng expands them.
    """
    if len(data) < 29 or data[25] != 0:
        return None
    depth = data[24]
    for kind, start, length in _png_chunks(data):
        if kind == b"IDAT":
            return None
        if kind == b"tRNS" and length >= 2 and start + 2 <= len(data):
            value = struct.unpack_from(">H", data, start)[0]
            return value * (255 // ((1 << depth) - 1)) if depth < 8 else value
    return None


def png_exif(data: bytes) -> bytes | None:
    """The eXIf chunk's contents, if the PNG has one."""
    for kind, start, length in _png_chunks(data):
        if kind == b"eXIf":
            return data[start : start + length]
    return None


def jpeg_layout(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """((width, height) from the frame header, offset of the first scan) of a JPEG, as far as known."""
    size = None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return size, None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker == 0xDA:
            return size, i
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and size is None and i + 9 <= len(data):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            size = (width, height) if width and height else None
        if length < 2:
            return size, None
        i += 2 + length
    return size, None


def _gif(data: bytes) -> tuple[int, int] | None:
    return struct.unpack_from("<HH", data, 6) if len(data) >= 10 else None


def _bmp(data: bytes) -> tuple[int, int] | None:
    header = _u32(data, 14, "<")
    if header == 12 and len(data) >= 22:
        return struct.unpack_from("<HH", data, 18)
    if header is not None and header >= 40 and len(data) >= 26:
        width, height = struct.unpack_from("<ii", data, 18)
        return abs(width), abs(height)
    return None


def _tiff(data: bytes) -> tuple[tuple[int, int] | None, bool, bool]:
    tags = tiff_tags(data, frozenset({256, 257, 262, 277, 338}))
    size = (tags[256], tags[257]) if 256 in tags and 257 in tags else None
    samples, photometric = tags.get(277, 1), tags.get(262, -1)
    alpha = 338 in tags or (samples == 2 and photometric in (0, 1)) or (samples == 4 and photometric == 2)
    return size, alpha, 338 in tags


def _webp(data: bytes) -> tuple[tuple[int, int] | None, bool]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return (width & 0x3FFF, height & 0x3FFF), False
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = struct.unpack_from("<I", data, 21)[0]
        return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1), bool(bits >> 28 & 1)
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return (width, height), bool(data[20] & 0x10)
    return None, False


def webp_exif(data: bytes) -> bytes | None:
    """The EXIF chunk of an extended WebP file, if it has one."""
    offset = 12
    while offset + 8 <= len(data):
        kind = data[offset : offset + 4]
        length = struct.unpack_from("<I", data, offset + 4)[0]
        if kind == b"EXIF":
            return data[offset + 8 : offset + 8 + length]
        offset += 8 + length + (length & 1)
    return None


def _pnm(data: bytes) -> tuple[int, int] | None:
    """Width and height of a P1-P6 (or PFM) file: the first two numbers, comments skipped."""
    if data[1:2] not in b"123456Ff":
        return None
    tokens: list[int] = []
    for line in data[2:4096].split(b"\n"):
        for token in line.split(b"#", 1)[0].split():
            if not token.isdigit():
                return None
            tokens.append(int(token))
            if len(tokens) == 2:
                return tokens[0], tokens[1]
    return None


def _sun_raster(data: bytes) -> tuple[int, int] | None:
    return struct.unpack_from(">II", data, 4) if len(data) >= 12 else None


def _hdr(data: bytes) -> tuple[int, int] | None:
    """Radiance HDR: the resolution line ('-Y 480 +X 640' and its variants) after the header."""
    match = re.search(rb"\n[-+]([XY]) (\d{1,9}) [-+]([XY]) (\d{1,9})\s", data[:8192])
    if match is None:
        return None
    first, second = int(match.group(2)), int(match.group(4))
    return (second, first) if match.group(1) == b"Y" else (first, second)


def _jpeg2000(data: bytes) -> tuple[int, int] | None:
    """Image size from a raw codestream's SIZ segment or a JP2 file's ihdr box."""
    if data[:4] == b"\xff\x4f\xff\x51" and len(data) >= 24:
        x, y, x0, y0 = struct.unpack_from(">IIII", data, 8)
        return max(x - x0, 0), max(y - y0, 0)
    index = data.find(b"ihdr", 0, 4096)
    if index >= 0 and index + 12 <= len(data):
        height, width = struct.unpack_from(">II", data, index + 4)
        return width, height
    return None


def _avif(data: bytes) -> tuple[int, int] | None:
    """The largest 'ispe' (image spatial extents) property in the first 64 KB."""
    largest = None
    index = data.find(b"ispe", 0, 65536)
    while index >= 0 and index + 16 <= len(data):
        width, height = struct.unpack_from(">II", data, index + 8)
        if largest is None or width * height > largest[0] * largest[1]:
            largest = (width, height)
        index = data.find(b"ispe", index + 4, 65536)
    return largest


def inspect_header(data: bytes) -> HeaderInfo:
    """Format, claimed size and transparency from the header; parts it cannot tell are None/False."""
    fmt = sniff_format(data)
    size: tuple[int, int] | None = None
    alpha = premultiplied = False
    scan = None
    if fmt == "PNG":
        size, alpha = _png(data)
    elif fmt == "JPEG":
        size, scan = jpeg_layout(data)
    elif fmt == "GIF":
        size, alpha = _gif(data), True  # OpenCV hands GIF frames over as BGRA
    elif fmt == "BMP":
        size = _bmp(data)
    elif fmt == "TIFF":
        size, alpha, premultiplied = _tiff(data)
    elif fmt == "WebP":
        size, alpha = _webp(data)
    elif fmt in ("PNM", "PFM"):
        size = _pnm(data)
    elif fmt == "Sun raster":
        size = _sun_raster(data)
    elif fmt == "HDR":
        size = _hdr(data)
    elif fmt == "JPEG 2000":
        size = _jpeg2000(data)
    elif fmt in ("AVIF", "HEIC"):
        size = _avif(data)
    return HeaderInfo(fmt, size, alpha, premultiplied, scan)
