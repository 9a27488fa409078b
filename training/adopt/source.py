"""What every source reader hands to the adoption pipeline, and the settings it resolves.

The readers (one module per kind of source) and the pipeline (compose, check, write) meet
only here, so a new kind of source is one reader module that returns an `AdoptSource`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Source kinds, as printed and stored in the `adopted_from` metadata entry.
KIND_ONNX = "onnx"
KIND_KERAS = "keras"
KIND_SAVEDMODEL = "savedmodel"
KIND_TEACHABLE_MACHINE = "teachable_machine"
KIND_LOBE = "lobe"

LAYOUTS = ("nchw", "nhwc")
CHANNEL_ORDERS = ("rgb", "bgr")


class AdoptError(ValueError):
    """A source that cannot be adopted as it is; the message is one line and names the fix."""


@dataclass(frozen=True)
class Detected:
    """One setting read from the source, and where it was read (printed to the user)."""

    value: Any
    origin: str  # e.g. "the input tensor's shape", "signature.json", "labels.txt beside the file"


@dataclass
class AdoptSource:
    """An original model, ready for the pipeline.

    `graph` is the original classifier as ONNX: one float image input (float32 or float16),
    NCHW or NHWC, and the classifier output first among its outputs. `reference` runs the
    ORIGINAL model (ONNX Runtime for an ONNX file, Keras/TensorFlow for the others) on a
    batch already preprocessed in numpy, laid out and typed as `graph`'s input, and returns
    that first output as float32 [N, classes]: the adopted file must match it.
    `detected` maps setting names (the keys of `AdoptSettings`) to what the source revealed.
    `cam_graph`, when set, is a graph with the same input that also has a `cam` output
    [N, h, w, classes] (Keras global-average-pooling -> dense heads), and `cam_layer` names it.
    """

    kind: str
    path: Path
    graph: Any  # onnx.ModelProto; typed loosely so this module imports no onnx
    reference: Callable[[np.ndarray], np.ndarray]
    detected: dict[str, Detected] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cam_graph: Any = None
    cam_layer: str = ""


@dataclass
class AdoptSettings:
    """The preprocessing and labelling the adopted file will carry; every field resolved.

    mean/std are in 0-1 units: x = (pixel / 255 - mean) / std, per channel in RGB order
    (after any BGR swap the source needs, the numbers still name R, G, B).
    """

    layout: str  # "nchw" | "nhwc"
    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str  # "rgb" | "bgr": what the original graph expects
    resize: str  # "stretch" | "shorter-side-crop"
    crop_fraction: float  # used with shorter-side-crop; 0 < f <= 1
    output: str  # "logits" | "probabilities"
    labels: list[str]
    input_dtype: str = "float32"  # or "float16": the original input's type
