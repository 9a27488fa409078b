"""Which reader a SOURCE needs, told from what it is on disk (never from what it claims inside).

An `.onnx` file is read here (training.adopt.onnx_source); Keras files, SavedModel
folders, Teachable Machine and Lobe exports by their own modules, imported by name only
when such a source arrives, so adopting an ONNX file never loads TensorFlow.
"""

from __future__ import annotations

import importlib
from pathlib import Path

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
    """ "onnx", "keras", "savedmodel", "teachable_machine" or "lobe"; AdoptError for anything else."""
    if not path.exists():
        raise AdoptError(f"{path} not found")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            return "onnx"
        if suffix in (".keras", ".h5"):
            if path.name == "keras_model.h5" and (path.parent / "labels.txt").is_file():
                return "teachable_machine"
            return "keras"
        raise AdoptError(f"{path.name} is not a model this command reads: give {KNOWN_KINDS_TEXT}")
    if path.is_dir():
        if (path / "signature.json").is_file():
            return "lobe"
        if (path / "keras_model.h5").is_file() and (path / "labels.txt").is_file():
            return "teachable_machine"
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
    return getattr(module, function_name)(path)
