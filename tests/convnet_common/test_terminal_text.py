"""terminal_safe: what a name could do to a terminal is shown, never done."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convnet_common.terminal_text import terminal_safe

# Everything a terminal acts on: C0 (ESC, BEL, CR, LF, TAB, BS), DEL, C1 (CSI, NEL, OSC),
# the bidi embeddings/overrides/isolates and marks, and line/paragraph separators.
HOSTILE = (
    [chr(c) for c in range(0x20)]
    + ["\x7f"]
    + [chr(c) for c in range(0x80, 0xA0)]
    + [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C, 0x2028, 0x2029)]
)


def _python_escape(char: str) -> str:
    """How a Python string literal writes `char`: the independent oracle for the escapes."""
    return char.encode("unicode_escape").decode("ascii")


@pytest.mark.parametrize("char", HOSTILE, ids=[f"U+{ord(c):04X}" for c in HOSTILE])
def test_every_control_character_is_shown_escaped(char: str) -> None:
    shown = terminal_safe(f"a{char}b")
    assert shown == f"a{_python_escape(char)}b"
    assert shown.isprintable() and char not in shown


def test_terminal_title_and_colour_sequences_are_inert() -> None:
    title, colour = "\x1b]0;owned\x07", "\x1b[31mred\x1b[0m"
    for text in (title, colour, f"photo{title}.jpg\n{colour}"):
        shown = terminal_safe(text)
        assert shown.isprintable() and "\x1b" not in shown and "\x07" not in shown and "\n" not in shown


@pytest.mark.parametrize("raw", [b"caf\xe9.jpg", b"\xff\xfe.png", b"ok-\x80\x9b.png"])
def test_bytes_of_a_non_utf8_name_are_shown_as_bytes(raw: bytes) -> None:
    """os.fsdecode keeps undecodable bytes as surrogate escapes; each is shown as \\xNN."""
    expected = "".join(chr(b) if b < 0x80 else f"\\x{b:02x}" for b in raw)
    for given in (os.fsdecode(raw), raw, Path(os.fsdecode(raw))):
        assert terminal_safe(given) == expected


@pytest.mark.parametrize("text", ["café.jpg", "中文 图片.png", "snow ☃ 🐈.jpeg", "C:\\Users\\me\\a b.png", ""])
def test_printable_text_is_unchanged(text: str) -> None:
    assert terminal_safe(text) == text


def test_any_object_is_turned_into_text() -> None:
    assert terminal_safe(3.5) == str(3.5)
    assert terminal_safe(ValueError("bad\nthing")) == "bad\\nthing"
