"""Class names for an adopted model: a label file given or found beside the source, or ImageNet's.

Tools that export classifiers keep the names beside the model, in a handful of shapes:
one name a line (`labels.txt`, `classes.txt`, `<model>.labels.txt`), Teachable Machine's
`0 cat` / `1 dog` (index, space, name). A file of 1,000 scores is almost always an
ImageNet classifier, whose names Keras keeps in its cache once anything downloaded them;
nothing is downloaded here (adopting must work offline).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from training.adopt.source import AdoptError, Detected

LABEL_FILE_LIMIT = 2_000_000  # 20,000 long class names fit; a planted multi-gigabyte file does not
IMAGENET_CLASSES = 1000
_INDEXED = re.compile(r"^(\d+)[ \t:,]+(.+)$")


def read_label_file(path: str | os.PathLike[str]) -> list[str]:
    """The names in a label file, in order; raise AdoptError for a file that cannot be one.

    Lines are stripped; blank lines at the end are dropped. When every line is `INDEX NAME`
    with the indices 0, 1, 2, … in order (Teachable Machine), the indices are removed.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > LABEL_FILE_LIMIT:
            raise AdoptError(f"{path.name} is {size:,} bytes, too large for a list of class names")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AdoptError(f"{path.name} is not UTF-8 text, so it cannot be a list of class names") from None
    except OSError as error:
        raise AdoptError(f"cannot read {path.name}: {error.strerror or error}") from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise AdoptError(f"{path.name} holds no class names")
    if any(not line for line in lines):
        raise AdoptError(f"{path.name} has a blank line among its class names (line {lines.index('') + 1})")
    matches = [_INDEXED.match(line) for line in lines]
    if all(matches) and [int(m.group(1)) for m in matches] == list(range(len(lines))):
        lines = [m.group(2).strip() for m in matches]
    return lines


def label_file_beside(model_path: Path) -> Path | None:
    """`labels.txt`, `<stem>.labels.txt` or `classes.txt` in the model's folder (first found)."""
    folder = model_path.parent if model_path.is_file() else model_path
    for name in (f"{model_path.stem}.labels.txt", "labels.txt", "classes.txt"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def detect_labels(model_path: Path) -> Detected | None:
    """The names in a label file beside the model, with where they came from; None if there is none."""
    found = label_file_beside(model_path)
    if found is None:
        return None
    return Detected(read_label_file(found), f"{found.name} beside the model")


def _keras_cache_index() -> Path:
    home = os.environ.get("KERAS_HOME", "").strip() or str(Path.home() / ".keras")
    return Path(home) / "models" / "imagenet_class_index.json"


def imagenet_labels() -> Detected | None:
    """ImageNet's 1,000 names from Keras's cache (no download); None when they are not on this machine."""
    path = _keras_cache_index()
    try:
        if not path.is_file() or path.stat().st_size > LABEL_FILE_LIMIT:
            return None
        index = json.loads(path.read_text(encoding="utf-8"))
        names = [str(index[str(i)][1]) for i in range(IMAGENET_CLASSES)]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return Detected(names, "1000 scores: the ImageNet class names (Keras's cached imagenet_class_index.json)")


def made_up_labels(count: int) -> list[str]:
    """`class 0`, `class 1`, …: the names a plain ONNX file gets in the app, too."""
    return [f"class {i}" for i in range(count)]
