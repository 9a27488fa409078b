"""Where the bundled default model lives."""

from __future__ import annotations

import os
from pathlib import Path

MODEL_ENV_VAR = "CONVNET_STUDIO_MODEL"
DEFAULT_MODEL_NAME = "digits-lenet5.onnx"


def default_model_path() -> Path:
    """The model opened when none is named: $CONVNET_STUDIO_MODEL, else the bundled digits model."""
    override = os.environ.get(MODEL_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parents[2] / "exported_models" / DEFAULT_MODEL_NAME
