"""The ONNX model-file contract between `training` (writer) and `desktop` (reader).

Kept in one place so the key names and tensor names cannot drift apart; see
docs/model-format.md for the prose version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convnet_common.safe_json import JsonInputError, loads_limited

FORMAT_VERSION = "1"

INPUT_NAME = "image"
PROBABILITIES_OUTPUT = "probabilities"
CAM_OUTPUT = "cam"
# Optional second map [N, h2, w2, classes] at an earlier, finer layer (issue 15): old files
# have none and keep working. Its layer and method are in KEY_CAM_FINE_LAYER/METHOD.
CAM_FINE_OUTPUT = "cam_fine"
OPSET = 17

# metadata_props keys
KEY_FORMAT_VERSION = "convnet_studio.format_version"
KEY_LABELS = "labels"
KEY_INPUT_SIZE = "input_size"
KEY_BACKBONE = "backbone"
KEY_TRAINING = "training"
KEY_PREPROCESSING = "preprocessing"
KEY_AUGMENTATION = "augmentation"
KEY_PRECISION = "precision"
KEY_EXPORTED_AT = "exported_at"
KEY_CAM_LAYER = "cam_layer"
KEY_CAM_FINE_LAYER = "cam_fine_layer"
KEY_CAM_FINE_METHOD = "cam_fine_method"  # "layercam" (Jiang et al. 2021): the only one written so far
# fp16/int8 files: JSON object saying how the conversion was checked against fp32 and on
# which CPU / ONNX Runtime (training/precision.py writes it; readers may ignore it).
KEY_PRECISION_CHECK = "precision_check"
# JSON object: the temperature the graph divides the logits by before the softmax, and what
# it did on the validation split (training/calibration.py). Optional: files exported
# before calibration have none, and their probabilities are the plain softmax.
KEY_CALIBRATION = "calibration"
# JSON object: how the app fits an image to the input (issue 15, adopted models):
# {"mode": "stretch"} (the default when absent: what every ConvNet Studio export expects) or
# {"mode": "shorter_side_crop", "crop_fraction": F} (0 < F <= 1; resize so the shorter side
# is round(H / F), then take the centre H x W, as timm and torchvision evaluate).
KEY_RESIZE = "resize"
RESIZE_STRETCH = "stretch"
RESIZE_SHORTER_SIDE_CROP = "shorter_side_crop"
# JSON object, adopted models only: where the original came from and what was put in front
# of it (training/adopt writes it): {"kind", "file", "sha256", "layout", "mean", "std",
# "channel_order", "output", "input_size", "adopted_at"}. Informational for readers.
KEY_ADOPTED_FROM = "adopted_from"

# A metadata value larger than this is refused by the reader: labels for 20,000
# classes fit comfortably, a multi-megabyte blob planted in a model does not.
MAX_METADATA_VALUE_BYTES = 1_000_000
# All metadata keys and values together: a model with many mid-sized entries is as
# much a memory problem as one huge entry.
MAX_METADATA_TOTAL_BYTES = 4_000_000

# The input tensor's height and width, and the pixels of one run at a fixed batch
# size: loading runs a test image through the model, and a file declaring a
# 100,000 x 100,000 input would otherwise ask for tens of gigabytes.
MAX_INPUT_SIDE = 8192
MAX_PIXELS_PER_RUN = 64_000_000


class MetadataError(ValueError):
    """Model metadata that is too large or malformed; the message is one line."""


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def check_metadata_size(metadata: Mapping[str, str]) -> None:
    """Refuse any value above MAX_METADATA_VALUE_BYTES and a total above MAX_METADATA_TOTAL_BYTES."""
    total = 0
    for key, value in metadata.items():
        size = _utf8_size(value)
        if size > MAX_METADATA_VALUE_BYTES:
            raise MetadataError(
                f"model metadata '{printable(key)}' is {size:,} bytes, above the {MAX_METADATA_VALUE_BYTES:,}-byte limit"
            )
        total += size + _utf8_size(key)
    if total > MAX_METADATA_TOTAL_BYTES:
        raise MetadataError(
            f"model metadata ({len(metadata):,} entries) is {total:,} bytes in all, "
            f"above the {MAX_METADATA_TOTAL_BYTES:,}-byte limit"
        )


def printable(text: str, limit: int = 60) -> str:
    """`text` fit for a one-line message: escaped if it holds control characters, shortened.

    Keys, labels and paths in a model file come from strangers too.
    """
    if not text.isprintable():
        text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "…"


def metadata_json(metadata: Mapping[str, str], key: str, expected: type | tuple[type, ...], what: str) -> Any:
    """Parse one metadata value as size-limited JSON of the `expected` type, or raise MetadataError.

    `what` describes the expected value for the message, e.g. "a JSON list of class names".
    """
    try:
        value = loads_limited(metadata[key], MAX_METADATA_VALUE_BYTES, f"model metadata '{printable(key)}'")
    except JsonInputError as error:
        raise MetadataError(f"{error}; expected {what}") from None
    if not isinstance(value, expected):
        raise MetadataError(f"model metadata '{printable(key)}' must be {what}, got {type(value).__name__}")
    return value
