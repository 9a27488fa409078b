"""Recognise Teachable Machine and Lobe exports by their files, before any TensorFlow loads.

Both tools write an ordinary model (Keras .h5 / SavedModel / ONNX) plus a file that fixes
the preprocessing; the adopt dispatch asks these cheap questions first so that the
tool's known settings apply instead of the plain Keras/SavedModel reader's guesses.
"""

from __future__ import annotations

from pathlib import Path

TEACHABLE_MACHINE_MODEL = "keras_model.h5"
TEACHABLE_MACHINE_SAVEDMODEL = "model.savedmodel"  # its "Savedmodel" export: converted_savedmodel/
LABELS_FILE = "labels.txt"
LOBE_SIGNATURE = "signature.json"


def teachable_machine_files(path: Path) -> tuple[Path, Path] | None:
    """(model, labels.txt) of a Teachable Machine export: the model is keras_model.h5 (Keras
    export) or the model.savedmodel folder (SavedModel export), labels.txt beside it.
    `path` is the export folder or the model itself."""
    path = Path(path)
    if path.is_file():
        if path.name != TEACHABLE_MACHINE_MODEL:
            return None
        model, folder = path, path.parent
    elif path.name == TEACHABLE_MACHINE_SAVEDMODEL:
        model, folder = path, path.parent
    else:
        folder = path
        model = folder / TEACHABLE_MACHINE_MODEL
        if not model.is_file():
            model = folder / TEACHABLE_MACHINE_SAVEDMODEL
    labels = folder / LABELS_FILE
    found = model.is_file() if model.suffix == ".h5" else (model / "saved_model.pb").is_file()
    return (model, labels) if found and labels.is_file() else None


def is_teachable_machine(path: Path) -> bool:
    """A folder holding keras_model.h5 (or model.savedmodel/) and labels.txt, or that model itself."""
    return teachable_machine_files(path) is not None


def lobe_signature_file(path: Path) -> Path | None:
    """signature.json of a Lobe export given its folder, the signature file itself, or the
    model.onnx of an ONNX-format export (the signature beside it)."""
    path = Path(path)
    if path.is_file():
        if path.name == LOBE_SIGNATURE:
            return path
        if path.suffix.lower() != ".onnx":
            return None
        path = path.parent
    candidate = path / LOBE_SIGNATURE
    return candidate if candidate.is_file() else None


def is_lobe(path: Path) -> bool:
    """A folder with Lobe's signature.json (beside a SavedModel or model.onnx), that file,
    or an .onnx file beside it."""
    return lobe_signature_file(path) is not None
