"""One-line messages from exceptions, for the status bar, the Batch table and the CLI's stderr."""

from __future__ import annotations

import re


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, shortened: ORT errors can run to pages."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    line = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", line)
    line = re.sub(r"^Load model from .* failed:", "", line).strip() or type(error).__name__
    return line if len(line) <= limit else line[:limit] + "…"
