"""Small ONNX models built with onnx.helper, so desktop tests never need TensorFlow.

The "colour" model averages each RGB channel over the image and maps that through a
fixed [3, classes] matrix and a softmax: a mostly red image is class 0, green class 1,
blue class 2. Its `cam` output is the same mapping applied to 4x4 block averages, so a
red square lights up the "red" map where the square is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

COLOUR_LABELS = ["red", "green", "blue"]


def full_metadata(labels: list[str], size: int) -> dict[str, str]:
    return {
        "convnet_studio.format_version": "1",
        "labels": json.dumps(labels),
        "input_size": json.dumps([size, size]),
        "backbone": "factory-mean-colour",
        "training": json.dumps(
            {"dataset": "synthetic", "image_count": 300, "train_images": 200, "val_images": 50,
             "val_accuracy": 0.98, "test_accuracy": 0.97, "epochs": 1, "weights": "none"}
        ),
        "preprocessing": "uint8 RGB -> float, mean over height and width",
        "augmentation": json.dumps({"flip": False}),
        "precision": "fp32",
        "exported_at": "2026-01-01T00:00:00+00:00",
        "cam_layer": "block_mean",
    }


def build_model(
    *,
    size: int = 16,
    labels: list[str] | None = None,
    weights: np.ndarray | None = None,
    metadata: dict[str, str] | None | str = "full",
    input_dtype: int = TensorProto.UINT8,
    layout: str = "NHWC",
    dynamic_spatial: bool = False,
    probabilities_name: str = "probabilities",
    with_cam: bool = True,
) -> onnx.ModelProto:
    """Build the colour model or one of its broken variants (see keyword arguments)."""
    labels = list(COLOUR_LABELS if labels is None else labels)
    if weights is None:
        weights = np.eye(3, len(labels), dtype=np.float32) * 0.05
    classes = weights.shape[1]
    assert size % 4 == 0
    block = size // 4
    nodes = []
    if layout == "NCHW":
        nodes.append(helper.make_node("Transpose", ["image"], ["nhwc"], perm=[0, 2, 3, 1]))
        source = "nhwc"
    else:
        source = "image"
    nodes += [
        helper.make_node("Cast", [source], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["means"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["means", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [probabilities_name], axis=-1),
    ]
    initializers = [numpy_helper.from_array(weights.astype(np.float32), "weights")]
    outputs = [helper.make_tensor_value_info(probabilities_name, TensorProto.FLOAT, ["N", classes])]
    if with_cam:
        shape = np.array([-1, 4, block, 4, block, 3], dtype=np.int64)
        initializers.append(numpy_helper.from_array(shape, "block_shape"))
        nodes += [
            helper.make_node("Reshape", ["pixels", "block_shape"], ["blocks"]),
            helper.make_node("ReduceMean", ["blocks"], ["block_means"], axes=[2, 4], keepdims=0),
            helper.make_node("MatMul", ["block_means", "weights"], ["cam_logits"]),
            helper.make_node("Relu", ["cam_logits"], ["cam"]),
        ]
        outputs.append(helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", 4, 4, classes]))
    spatial: list[Any] = ["H", "W"] if dynamic_spatial else [size, size]
    input_shape = ["N", 3, *spatial] if layout == "NCHW" else ["N", *spatial, 3]
    graph = helper.make_graph(
        nodes, "colour_model", [helper.make_tensor_value_info("image", input_dtype, input_shape)], outputs,
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="onnx_factory")
    model.ir_version = 8
    if metadata == "full":
        metadata = full_metadata(labels, size)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


def save_model(path: Path, **kwargs: Any) -> Path:
    onnx.save(build_model(**kwargs), str(path))
    return path


def digits_like_model(path: Path, size: int = 28) -> Path:
    """A ten-class model labelled "0".."9", for looking at the app with a digits-like model."""
    rng = np.random.default_rng(7)
    weights = rng.normal(0.0, 0.02, size=(3, 10)).astype(np.float32)
    weights[0, 7] += 0.05  # red images read as "7"
    return save_model(path, size=size, labels=[str(i) for i in range(10)], weights=weights)


def solid_image(colour: tuple[int, int, int], height: int = 40, width: int = 50) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = colour
    return image


def mostly(colour: tuple[int, int, int], height: int = 64, width: int = 64) -> np.ndarray:
    """A dark image with a large square of `colour` in its upper-left part."""
    image = np.full((height, width, 3), 20, dtype=np.uint8)
    image[: height * 3 // 4, : width * 3 // 4] = colour
    return image
