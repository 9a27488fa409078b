"""The ONNX model-file contract between `training` (writer) and `desktop` (reader).

Kept in one place so the key names and tensor names cannot drift apart; see
docs/model-format.md for the prose version.
"""

from __future__ import annotations

FORMAT_VERSION = "1"

INPUT_NAME = "image"
PROBABILITIES_OUTPUT = "probabilities"
CAM_OUTPUT = "cam"
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

# A metadata value larger than this is refused by the reader: labels for 20,000
# classes fit comfortably, a multi-megabyte blob planted in a model does not.
MAX_METADATA_VALUE_BYTES = 1_000_000
