"""A run's exported models: where the Train tab puts them, and what an export says about itself.

`default_export_path` names where the Train tab offers to export a run (RUN_DIR/model.onnx
for fp32, model-fp16.onnx, model-int8.onnx: inside the run folder, so the run and its
model stay together), `find_export` the one the results gallery draws activation maps
with, and `read_export_check` the agreement numbers `convnet-train export` stores in the
file's `precision_check` metadata (training/precision.py). That is read from the file,
not parsed from the command's text: the file is what the app will run. The metadata is
read by convnet_common's protobuf walker, without ONNX Runtime and without onnx.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from convnet_common import model_format as fmt
from convnet_common.onnx_file import ModelFileError, inspect_model_file
from desktop.core.run_history import finite, whole

PRECISIONS = ("fp32", "fp16", "int8")
EXPORT_NAMES = {"fp32": "model.onnx", "fp16": "model-fp16.onnx", "int8": "model-int8.onnx"}


def _unit(value) -> float | None:
    number = finite(value)
    return number if number is not None and 0.0 <= number <= 1.0 else None


def default_export_path(run_dir: str | os.PathLike[str], precision: str = "fp32") -> Path:
    """Where the Train tab exports a run by default: RUN_DIR/model.onnx (model-fp16.onnx, model-int8.onnx)."""
    if precision not in EXPORT_NAMES:
        raise ValueError(f"unknown precision {precision!r}")
    return Path(run_dir) / EXPORT_NAMES[precision]


def find_export(run_dir: str | os.PathLike[str]) -> Path | None:
    """The run's exported model for activation maps: the first default name that exists (fp32 first)."""
    for precision in PRECISIONS:
        path = default_export_path(run_dir, precision)
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class ExportCheck:
    """What an exported file says about itself: its precision and, for fp16/int8, its
    top-1 agreement with the fp32 model on `images` validation images (None: not recorded)."""

    precision: str
    agreement: float | None = None
    required: float | None = None
    max_probability_difference: float | None = None
    images: int | None = None

    def describe(self) -> str:
        if self.agreement is None:
            return f"{self.precision or 'unknown'} precision" + (
                "" if self.precision in ("", "fp32") else " (no agreement check recorded)"
            )
        words = f"{self.precision}: top-1 agreement with fp32 {100 * self.agreement:.2f} %"
        if self.images is not None:
            words += f" on {self.images} images"
        if self.required is not None:
            words += f" (needs {100 * self.required:.1f} %)"
        if self.max_probability_difference is not None:
            words += f", max probability difference {self.max_probability_difference:.2g}"
        return words


def read_export_check(path: str | os.PathLike[str]) -> ExportCheck:
    """The `precision` and `precision_check` metadata of an exported file (read without ONNX
    Runtime); raises OSError or ModelFileError when the file cannot be read as a model."""
    metadata = inspect_model_file(path).metadata
    precision = metadata.get(fmt.KEY_PRECISION, "")[:20]
    try:
        check = json.loads(metadata.get(fmt.KEY_PRECISION_CHECK, "null")[:100_000])
    except ValueError:
        check = None
    if not isinstance(check, dict):
        return ExportCheck(precision)
    images = whole(check.get("check_images"))
    return ExportCheck(
        precision,
        _unit(check.get("top1_agreement")),
        _unit(check.get("required_top1_agreement")),
        finite(check.get("max_probability_difference")),
        images,
    )


__all__ = [
    "EXPORT_NAMES",
    "PRECISIONS",
    "ExportCheck",
    "ModelFileError",
    "default_export_path",
    "find_export",
    "read_export_check",
]
