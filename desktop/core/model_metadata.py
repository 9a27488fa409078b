"""A model's metadata, turned into the ModelInfo the app shows, without an ONNX session.

Kept apart from the session code so the one function that reads metadata from a
stranger's file, `info_from_metadata`, can be tested and fuzzed on plain dicts. Every
way metadata can be wrong ends in a one-line `ModelLoadError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convnet_common import model_format as fmt


class ModelLoadError(Exception):
    """A model file that cannot be used; the message is one line, meant for users."""


@dataclass
class ModelInfo:
    """What the app shows about a model, read from its graph and metadata."""

    path: Path
    file_size: int
    labels: list[str]
    input_size: tuple[int, int]
    has_metadata: bool
    has_cam: bool
    backbone: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    preprocessing: str = ""
    augmentation: Any = None
    precision: str = ""
    exported_at: str = ""
    cam_layer: str = ""
    notices: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def held_out_accuracy(self) -> float | None:
        """Test accuracy if training recorded one, else validation accuracy, else None.

        Only a finite fraction in [0, 1] counts: anything else is not an accuracy.
        """
        for key in ("test_accuracy", "val_accuracy"):
            value = self.training.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value) and 0.0 <= value <= 1.0:
                    return float(value)
        return None


def _json(metadata: Mapping[str, str], key: str, expected: type | tuple[type, ...], what: str) -> Any:
    try:
        return fmt.metadata_json(metadata, key, expected, what)
    except fmt.MetadataError as error:
        raise ModelLoadError(str(error)) from None


def info_from_metadata(
    metadata: Mapping[str, str], *, path: Path, file_size: int, input_size: tuple[int, int]
) -> ModelInfo:
    """Check metadata sizes and contents and build the ModelInfo, or raise ModelLoadError.

    A file without `convnet_studio.format_version` is a plain ONNX model: its labels
    stay empty here (load_model names them `class 0`… once it knows the class count).
    """
    try:
        fmt.check_metadata_size(metadata)
    except fmt.MetadataError as error:
        raise ModelLoadError(str(error)) from None
    has_metadata = fmt.KEY_FORMAT_VERSION in metadata
    info = ModelInfo(
        path=path, file_size=file_size, labels=[], input_size=input_size, has_metadata=has_metadata, has_cam=False
    )
    if not has_metadata:
        return info
    version = metadata[fmt.KEY_FORMAT_VERSION]
    if version != fmt.FORMAT_VERSION:
        raise ModelLoadError(
            f"model format version '{fmt.printable(version, 20)}' is not supported; "
            f"this app reads version {fmt.FORMAT_VERSION}"
        )
    if fmt.KEY_LABELS not in metadata:
        raise ModelLoadError(f"model metadata has no '{fmt.KEY_LABELS}' entry (a JSON list of class names)")
    labels = _json(metadata, fmt.KEY_LABELS, list, "a JSON list of class names")
    if not labels or not all(isinstance(label, str) for label in labels):
        raise ModelLoadError(f"model metadata '{fmt.KEY_LABELS}' must be a non-empty list of strings")
    info.labels = labels
    if fmt.KEY_INPUT_SIZE in metadata:
        size = _json(metadata, fmt.KEY_INPUT_SIZE, list, "a JSON list [height, width]")
        if size != list(input_size):
            shown = fmt.printable(str(size), 40)
            raise ModelLoadError(
                f"model metadata '{fmt.KEY_INPUT_SIZE}' is {shown} but the input tensor is {list(input_size)}"
            )
    if fmt.KEY_TRAINING in metadata:
        info.training = _json(metadata, fmt.KEY_TRAINING, dict, "a JSON object")
    if fmt.KEY_AUGMENTATION in metadata:
        info.augmentation = _json(metadata, fmt.KEY_AUGMENTATION, (dict, list), "a JSON object or list")
    info.backbone = metadata.get(fmt.KEY_BACKBONE, "")
    info.preprocessing = metadata.get(fmt.KEY_PREPROCESSING, "")
    info.precision = metadata.get(fmt.KEY_PRECISION, "")
    info.exported_at = metadata.get(fmt.KEY_EXPORTED_AT, "")
    info.cam_layer = metadata.get(fmt.KEY_CAM_LAYER, "")
    return info
