"""Whether libjpeg had to guess at part of a JPEG's picture, found without its warnings.

libjpeg-turbo does not stop at corrupt scan data: when a segment of entropy-coded data
runs out before its last block ("Corrupt JPEG data: premature end of data segment") it
leaves the remaining blocks of the segment empty, which comes out as flat grey, and it
says so only on stderr, which OpenCV neither reports nor lets a caller read (catching
fd 2 is process-wide, so not usable from a pool of decoding threads). A zeroed or cut
stretch of the scan, or random bytes in it, all end this way: the decoder reads the
damaged bits as codes of the wrong lengths, loses its place and reaches the segment's
end marker early.

The test here asks libjpeg itself, thread-safely: the same file is decoded a second
time with a few junk bytes placed just before the marker that ends each entropy-coded
segment (every restart marker and the scan's end). For an intact file those bytes come
after the last block of their segment: libjpeg skips them as "extraneous bytes" and the
picture is bit-for-bit the same. If the decoder ran out of data, it now reads the junk
instead of filling in grey, and the picture differs. Rules of the format are checked on
the way (restart markers in order, no marker a scan cannot hold), each a corrupt file.
A zeroed stretch that libjpeg reads to the end without noticing is caught by its bytes
(impossible_zero_run). Cost: about one more decode per JPEG (a progressive one decoded
at reduced size is compared at full size).
"""

from __future__ import annotations

import cv2
import numpy as np

# What the second decode finds before each segment's end: never 0xFF (a marker), not
# zero bits (what libjpeg itself fills in), long enough to feed a whole MCU.
_JUNK = b"\x5a\xa5" * 64
# Markers that may follow a scan: another table, restart interval, comment, APPn, scan, end.
_AFTER_SCAN = frozenset({0xC4, 0xCC, 0xDA, 0xDB, 0xDC, 0xDD, 0xD9, 0xFE, *range(0xE0, 0xF0)})


class CorruptScan(Exception):
    """The scan data breaks a rule of the format (a marker where none may be, RSTs out of order)."""


def padded_copy(data: bytes, first_scan: int) -> bytes | None:
    """`data` with _JUNK before the end of every entropy-coded segment, or None if there are none.

    Raises CorruptScan for scan data that no encoder writes. Cost: one C-speed find per
    0xFF byte in the scans (about 1 in 200 bytes of a photo), plus one copy of the file.
    """
    pieces: list[bytes] = []
    start = 0  # data[start:] not yet copied into pieces
    i = first_scan
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF or data[i + 1] != 0xDA:
            raise CorruptScan("expected a scan")
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")  # past the scan header
        expected_rst = 0
        while True:  # the entropy-coded data of this scan
            i = data.find(b"\xff", i)
            if i < 0 or i + 1 >= n:
                raise CorruptScan("scan without an end")
            code = data[i + 1]
            if code == 0x00:
                i += 2
                continue
            if code == 0xFF:  # fill byte before a marker
                i += 1
                continue
            pieces += [data[start:i], _JUNK]
            start = i
            if 0xD0 <= code <= 0xD7:
                if code != 0xD0 + expected_rst:
                    raise CorruptScan("restart markers out of order")
                expected_rst = (expected_rst + 1) % 8
                i += 2
                continue
            if code not in _AFTER_SCAN:
                raise CorruptScan(f"marker 0x{code:02x} inside a scan")
            break
        # Between scans: tables and such, up to the next scan or the end.
        while True:
            if i + 2 > n or data[i] != 0xFF:
                raise CorruptScan("damaged segment between scans")
            code = data[i + 1]
            if code == 0xD9:
                pieces.append(data[start:])
                return b"".join(pieces)
            if code == 0xDA:
                break
            if code not in _AFTER_SCAN or i + 4 > n:
                raise CorruptScan(f"marker 0x{code:02x} between scans")
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise CorruptScan("no end-of-image marker after the scans")


# Zero bits decode, in every Huffman table, as the table's first symbol (the one with the
# shortest code). A run this long spans more than two whole 8x8 blocks of such symbols.
_ZERO_RUN = bytes(64)


def impossible_zero_run(data: bytes, first_scan: int) -> bool:
    """Whether a sequential JPEG's scan holds a run of zero bytes its tables make impossible.

    A zeroed stretch of scan data is read by libjpeg without complaint: it decodes the
    zeros as codes, loses its place for a while and finds it again, so nothing warns
    and the picture is silently wrong. In a flat region an encoder writes long zero
    runs only where every AC table's shortest code is end-of-block (the block ends at
    once); otherwise each block of zero bits would hold 63 equal non-zero
    coefficients, a pattern no picture produces. Progressive files are left out: their
    scans code coefficients in bands and bits, where the rule does not hold.
    """
    if data.find(_ZERO_RUN, first_scan) < 0:
        return False
    sequential, zero_symbols = False, []
    i = 2
    while i + 4 <= first_scan:
        if data[i] != 0xFF:
            return False  # stray bytes: leave the file to the decoder
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1):
            sequential = True
        elif marker == 0xC4:  # DHT: one or more tables, each class/id, 16 counts, symbols
            j, end = i + 4, min(i + 2 + length, first_scan)
            while j + 17 <= end:
                count = sum(data[j + 1 : j + 17])
                if data[j] >> 4 == 1 and count and j + 17 < end:
                    zero_symbols.append(data[j + 17])
                j += 17 + count
        i += 2 + length
    return sequential and any(symbol != 0x00 for symbol in zero_symbols)


def jpeg_intact(data: bytes, first_scan: int, flag: int, image: np.ndarray) -> bool:
    """Whether libjpeg decoded every block from the file's own data (see the module docstring).

    A second decode with junk after each entropy-coded segment must give the same
    pixels; it costs about one more decode of the file, at the same (reduced) size. A
    progressive file is compared at full size: its later scans refine fine detail only,
    which a 1/2-1/8 decode leaves out, so damage there would not show.
    """
    if impossible_zero_run(data, first_scan):
        return False
    try:
        padded = padded_copy(data, first_scan)
        if flag != cv2.IMREAD_COLOR and b"\xff\xc2" in data[:first_scan]:
            flag = cv2.IMREAD_COLOR
            image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
        again = cv2.imdecode(np.frombuffer(padded, dtype=np.uint8), flag)
    except (CorruptScan, cv2.error, MemoryError):
        return False
    return again is not None and image is not None and again.shape == image.shape and np.array_equal(again, image)
