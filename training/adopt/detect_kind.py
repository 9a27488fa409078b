"""Recognise Teachable Machine and Lobe exports by their files, before any TensorFlow loads.

Both tools write an ordinary model (Keras .h5 / SavedModel / ONNX) plus a file that fixes
the preprocessing; the adopt dispatch asks these cheap questions first so that the
tool's known settings apply instead of the plain Keras/SavedModel reader's guesses.
"""

from __future__ import annotations

from pathlib import Path

TEACHABLE_MACHINE_MODEL = "keras_model.h5"
LABELS_FILE = "labels.txt"
LOBE_SIGNATURE = "signature.json"


def teachable_machine_files(path: Path) -> tuple[Path, Path] | None:
    """(keras_model.h5, labels.txt) for a Teachable Machine Keras export folder or its .h5 file."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if path.is_file() and path.name != TEACHABLE_MACHINE_MODEL:
        return None
    model, labels = folder / TEACHABLE_MACHINE_MODEL, folder / LABELS_FILE
    return (model, labels) if model.is_file() and labels.is_file() else None


def is_teachable_machine(path: Path) -> bool:
    """A folder holding keras_model.h5 and labels.txt, or that keras_model.h5 itself."""
    return teachable_machine_files(path) is not None


def lobe_signature_file(path: Path) -> Path | None:
    """signature.json of a Lobe export given its folder or the signature file itself."""
    path = Path(path)
    if path.is_file():
        return path if path.name == LOBE_SIGNATURE else None
    candidate = path / LOBE_SIGNATURE
    return candidate if candidate.is_file() else None


def is_lobe(path: Path) -> bool:
    """A folder with Lobe's signature.json (beside a SavedModel or model.onnx), or that file."""
    return lobe_signature_file(path) is not None
