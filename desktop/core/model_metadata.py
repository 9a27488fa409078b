"""A model's metadata, turned into the ModelInfo the app shows, without an ONNX session.

Kept apart from the session code so `info_from_metadata` can be tested and fuzzed on
plain dicts. The rules themselves are convnet_common/model_contract.py's, shared with
`convnet-train evaluate`; every way metadata can be wrong ends in a one-line
`ModelLoadError` here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convnet_common.model_contract import ContractError, ModelMetadata, read_metadata
from convnet_common.resize_mode import STRETCHED, ResizeMode
from convnet_common.unknown_score import UnknownSpec


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
    # The optional finer map (`cam_fine`, LayerCAM at an earlier layer): set once the test run saw it.
    has_cam_fine: bool = False
    cam_fine_layer: str = ""
    cam_fine_method: str = ""
    notices: list[str] = field(default_factory=list)
    # The `unknown` entry, set only when the file also has the `unknown_score` output.
    unknown: UnknownSpec | None = None
    calibration: dict[str, Any] | None = None  # shown in the model panel only
    sha256: str = ""  # of the file, for models with an unknown score: their threshold setting's key
    resize: ResizeMode = STRETCHED  # how images are fitted to the input (adopted models may crop)

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


def info_from_metadata(
    metadata: Mapping[str, str], *, path: Path, file_size: int, input_size: tuple[int, int]
) -> ModelInfo:
    """Check metadata sizes and contents and build the ModelInfo, or raise ModelLoadError.

    The rules are the shared reader's (convnet_common/model_contract.py, `read_metadata`),
    the same `convnet-train evaluate` applies. A file without
    `convnet_studio.format_version` is a plain ONNX model: its labels stay empty here
    (load_model names them `class 0`… once it knows the class count).
    """
    try:
        checked = read_metadata(metadata, input_size)
    except ContractError as error:
        raise ModelLoadError(str(error)) from None
    return info_from_checked(checked, path=path, file_size=file_size, input_size=input_size)


def info_from_checked(checked: ModelMetadata, *, path: Path, file_size: int, input_size: tuple[int, int]) -> ModelInfo:
    """The ModelInfo for metadata the shared reader has already checked (`read_contract`)."""
    return ModelInfo(
        path=path,
        file_size=file_size,
        labels=list(checked.labels),
        input_size=input_size,
        has_metadata=checked.has_metadata,
        has_cam=False,
        backbone=checked.backbone,
        training=checked.training,
        preprocessing=checked.preprocessing,
        augmentation=checked.augmentation,
        precision=checked.precision,
        exported_at=checked.exported_at,
        cam_layer=checked.cam_layer,
        cam_fine_layer=checked.cam_fine_layer,
        cam_fine_method=checked.cam_fine_method,
        calibration=checked.calibration,
        resize=checked.resize,
    )
