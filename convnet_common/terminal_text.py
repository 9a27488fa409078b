"""Text made safe to print as one terminal line: file names, class names, model metadata.

File names and class names come from strangers (a downloaded folder, a model's metadata).
Printed raw, `\\x1b]0;…\\x07` retitles the terminal, `\\x1b[31m` colours what follows, a
newline splits one message into two that look like ours, and a right-to-left override
(U+202E) makes `gpj.exe` read as `exe.jpg`. So every such text a command prints goes
through `terminal_safe`, which shows each of those characters as a visible escape, the
way Python writes them in a string literal:

- control characters: `\\n`, `\\r`, `\\t`, and `\\xNN` for the rest of C0, DEL and the C1
  range U+0080–U+009F (`\\x1b`, `\\x9b`);
- bidi controls (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C) and every other
  character Python does not call printable (format characters, line and paragraph
  separators, unusual spaces): `\\u202e`, `\\U000e0001`;
- bytes of a file name that is not valid UTF-8 (which Python carries as the "surrogate
  escapes" U+DC80–U+DCFF): `\\xNN`, the byte itself.

Backslashes are left as they are, so a Windows path stays readable; the escapes are for
reading, and the exact names are in the CSV and JSON outputs.
"""

from __future__ import annotations

import argparse
import os
from typing import NoReturn, Union

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
TextLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by os.fsdecode
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def terminal_safe(text: TextLike | object) -> str:
    """`text` (a str, a path, bytes or anything str() takes) as one line with no character a
    terminal would act on; printable characters, non-ASCII letters included, are kept."""
    if isinstance(text, (bytes, os.PathLike)):
        text = os.fsdecode(text)
    elif not isinstance(text, str):
        text = str(text)
    if text.isprintable():  # the common case: nothing to do
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


class SafeArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors quote the command line through terminal_safe:
    argparse repeats what it refused ("unrecognized arguments: NAME"), and a name typed or
    tab-completed from a hostile folder must not act on the terminal there either."""

    def error(self, message: str) -> NoReturn:
        super().error(terminal_safe(message))
