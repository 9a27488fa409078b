"""JSON from files and strings we did not write ourselves, with a size limit.

Settings, resume state and model metadata all come from disk, and a model file comes
from strangers. `json.loads` on such input can take any amount of memory, and a
deeply nested document makes it raise RecursionError rather than a decoding error.
These readers refuse oversized input before parsing and turn every way the text can
be wrong into one `JsonInputError` whose message is a single line naming `what`.
"""

from __future__ import annotations

import json
import os
from typing import Any

# Deeper than any document this project writes (settings, metadata and results are
# at most four levels); far below where Python's recursive decoder gives up.
MAX_JSON_DEPTH = 64
# Integers must fit in 64 bits: nothing we store is larger, and a 4,000-digit number
# costs time to convert and breaks float() in whoever reads it next.
MAX_JSON_INT = 2**63 - 1


class JsonInputError(ValueError):
    """JSON input that is too large, not text, malformed or too deeply nested."""


class _IntegerTooLarge(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text) > 20 or abs(value := int(text)) > MAX_JSON_INT:
        raise _IntegerTooLarge(text[:24])
    return value


def _check_tree(value: Any, what: str) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH and strings that are not valid Unicode.

    A lone surrogate ("\\ud800") is legal JSON but not text: writing it out again, or
    using it as a folder name, would fail far from here. Iterative, so no recursion.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise JsonInputError(f"{what} has a string with an invalid \\u escape (a lone surrogate)") from None
            continue
        if isinstance(item, dict):
            children: list[Any] = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise JsonInputError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)


def _size_error(what: str, size: int, max_bytes: int) -> JsonInputError:
    return JsonInputError(f"{what} is {size:,} bytes, above the {max_bytes:,}-byte limit")


def loads_limited(text: str | bytes, max_bytes: int, what: str) -> Any:
    """Parse JSON text of at most `max_bytes` (UTF-8) bytes, or raise JsonInputError.

    `what` names the input in messages, e.g. "model metadata 'labels'".
    """
    if isinstance(text, str):
        # A character is at most 4 UTF-8 bytes: most strings are judged without encoding.
        if len(text) * 4 > max_bytes:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > max_bytes:
                raise _size_error(what, size, max_bytes)
    else:
        if len(text) > max_bytes:
            raise _size_error(what, len(text), max_bytes)
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise JsonInputError(f"{what} is not UTF-8 text (bad byte at offset {error.start})") from None
    try:
        value = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as error:
        raise JsonInputError(
            f"{what} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except _IntegerTooLarge as error:
        raise JsonInputError(f"{what} has an integer too large to store ({error}…)") from None
    except RecursionError:
        raise JsonInputError(f"{what} is nested too deeply to read") from None
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        raise JsonInputError(f"{what} is not valid JSON ({str(error).splitlines()[0][:120]})") from None
    _check_tree(value, what)
    return value


def read_json(path: str | os.PathLike[str], max_bytes: int, what: str) -> Any:
    """Read and parse a JSON file of at most `max_bytes`, or raise JsonInputError.

    The size is checked before anything is read, and the read itself stops one byte
    past the limit, so a file that grows meanwhile is refused too. OSError (missing
    file, permission denied) is left to the caller, which knows what a missing file means.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise _size_error(what, size, max_bytes)
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise JsonInputError(f"{what} is above the {max_bytes:,}-byte limit")
    return loads_limited(data, max_bytes, what)
