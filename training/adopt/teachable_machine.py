"""Read a Teachable Machine image-project export: keras_model.h5 + labels.txt (Keras
export) or model.savedmodel/ + labels.txt (SavedModel export).

Teachable Machine does not store its preprocessing in the file; its own Keras snippet
does it, and those facts are fixed for every export: images are fitted to 224x224 by
`ImageOps.fit` (scale so the shorter side fills, centre crop), and pixels scaled with
`image / 127.5 - 1` (that is mean 0.5, std 0.5 in 0-1 units). The model is a Sequential
of a MobileNet base ending in global average pooling and a Dense -> Dense softmax head,
so it gets the in-graph activation maps. Its h5 needs the DepthwiseConv2D stand-in of
keras_source to load in Keras 3.
"""

from __future__ import annotations

from pathlib import Path

from training.adopt.detect_kind import (
    LABELS_FILE,
    TEACHABLE_MACHINE_MODEL,
    TEACHABLE_MACHINE_SAVEDMODEL,
    teachable_machine_files,
)
from training.adopt.keras_source import load_keras_model, source_from_keras_model
from training.adopt.labels import read_label_file
from training.adopt.savedmodel_source import read_savedmodel_source
from training.adopt.source import KIND_TEACHABLE_MACHINE, AdoptError, AdoptSource, Detected

ORIGIN = "Teachable Machine export"


def _from_savedmodel(folder: Path, labels_file: Path) -> AdoptSource:
    """The SavedModel export: the same network and preprocessing, no Keras file to read maps from."""
    source = read_savedmodel_source(folder)
    source.kind = KIND_TEACHABLE_MACHINE
    labels = read_label_file(labels_file)
    classes = source.graph.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    if len(labels) != classes:
        raise AdoptError(f"{labels_file} has {len(labels)} class names but the model has {classes} outputs")
    source.detected["labels"] = Detected(labels, f"{labels_file.name} beside the model")
    return source


def read_teachable_machine(path: Path) -> AdoptSource:
    """The export folder, or its keras_model.h5 with labels.txt beside it."""
    files = teachable_machine_files(Path(path))
    if files is None:
        raise AdoptError(
            f"{path}: a Teachable Machine export is a folder with {TEACHABLE_MACHINE_MODEL} "
            f"(or {TEACHABLE_MACHINE_SAVEDMODEL}/) and {LABELS_FILE}"
        )
    model_file, labels_file = files
    if model_file.is_dir():
        source = _from_savedmodel(model_file, labels_file)
    else:
        source = source_from_keras_model(load_keras_model(model_file), model_file, KIND_TEACHABLE_MACHINE, labels_file)
    known = {
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "channel_order": "rgb",
        "resize": "shorter-side-crop",
        "crop_fraction": 1.0,
        "output": "probabilities",
    }
    for name, value in known.items():
        source.detected[name] = Detected(value, f"{ORIGIN} (pixels / 127.5 - 1, centre square fitted to the input)")
    source.notes.append("Teachable Machine preprocessing: centre square crop, resize, pixels / 127.5 - 1")
    return source
