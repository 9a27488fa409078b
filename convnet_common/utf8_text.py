"""File names as valid UTF-8, for JSON and for readers that reject anything else.

Python carries the bytes of a name that is not UTF-8 as surrogate escapes; JSON must be
UTF-8, so they are written as something else. What depends on the reader: training's
progress stream and split.json show each byte as \\xNN (a person can still tell which
file), the app's JSON export uses U+FFFD beside an exact `path_base64`. One function,
the rule for the bad bytes passed in.
"""

from __future__ import annotations


def as_utf8(text: str, bad_bytes: str) -> str:
    """`text` unchanged if it is valid UTF-8; else its escaped bytes by codec error handler
    `bad_bytes` ("replace": U+FFFD, "backslashreplace": \\xNN); a lone surrogate that is no
    escaped byte the same way."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", bad_bytes)
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return text.encode("utf-8", bad_bytes).decode("utf-8")
