"""Which reader a SOURCE needs, told from what it is on disk (never from what it claims inside).

An `.onnx` file is read here (training.adopt.onnx_source); Keras files, SavedModel
folders, Teachable Machine and Lobe exports by their own modules, imported by name only
when such a source arrives, so adopting an ONNX file never loads TensorFlow.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from training.adopt.detect_kind import is_lobe, is_teachable_machine
from training.adopt.source import AdoptError, AdoptSource

# kind -> (module, function, what to call it in a message)
READERS = {
    "keras": ("training.adopt.keras_source", "read_keras_source", "Keras"),
    "savedmodel": ("training.adopt.savedmodel_source", "read_savedmodel_source", "SavedModel"),
    "teachable_machine": ("training.adopt.teachable_machine", "read_teachable_machine", "Teachable Machine"),
    "lobe": ("training.adopt.lobe", "read_lobe", "Lobe"),
}
KNOWN_KINDS_TEXT = (
    "an .onnx file, a .keras or .h5 file, a TensorFlow SavedModel folder (saved_model.pb), a Teachable Machine "
    "export (keras_model.h5 + labels.txt) or a Lobe export (a folder with signature.json)"
)


def source_kind(path: Path) -> str:
    """ "onnx", "keras", "savedmodel", "teachable_machine" or "lobe"; AdoptError for anything else.

    The tools' own exports are recognised first (training.adopt.detect_kind), so their known
    settings apply: an .onnx file beside Lobe's signature.json is a Lobe export.
    """
    if not path.exists():
        raise AdoptError(f"{path} not found")
    if is_lobe(path) or (path.is_file() and path.suffix.lower() == ".onnx" and is_lobe(path.parent)):
        return "lobe"
    if is_teachable_machine(path):
        return "teachable_machine"
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            return "onnx"
        if suffix in (".keras", ".h5", ".hdf5"):
            return "keras"
        if path.name == "saved_model.pb":  # the SavedModel's own file given for its folder
            return "savedmodel"
        raise AdoptError(f"{path.name} is not a model this command reads: give {KNOWN_KINDS_TEXT}")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        onnx_files = sorted(path.glob("*.onnx"))
        if len(onnx_files) == 1:
            raise AdoptError(f"{path.name} is a folder; give the model file inside it: {onnx_files[0]}")
        raise AdoptError(f"{path.name} is a folder that holds no model this command reads: give {KNOWN_KINDS_TEXT}")
    raise AdoptError(f"{path} is neither a file nor a folder")


def read_source(path: str | Path) -> AdoptSource:
    """The AdoptSource for `path`, by the reader its kind needs; AdoptError names what is wrong."""
    path = Path(path)
    kind = source_kind(path)
    if kind == "onnx":
        from training.adopt.onnx_source import read_onnx_source

        return read_onnx_source(path)
    module_name, function_name, title = READERS[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise AdoptError(f"{title} sources are not supported yet ({path.name})") from None
    from training.tf_runtime import load_tensorflow

    load_tensorflow()
    if kind == "lobe" and path.is_file() and path.suffix.lower() == ".onnx":
        path = path.parent  # the export folder: its signature.json names the file
    return getattr(module, function_name)(path)
