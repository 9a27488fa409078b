"""Foreign classifiers for the adoption tests, made here (no downloads), and an independent reference.

`foreign_classifier` writes a small float convnet as other tools export it: NCHW or NHWC,
float32 or float16, dynamic or fixed batch, logits or a softmax at the end, with or
without Windows ML `Image.*` metadata. `original_probabilities` runs such a file the way
its own tool would — numpy preprocessing written here, not the pipeline's — so a test
compares the adopted file with the original and not with the pipeline's own arithmetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8  # what the installed ONNX Runtime reads (onnx's newest IR is ahead of it)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv_head(nodes, inits, rng, start: str, classes: int, fixed_batch: int | None, channels: int = 3) -> str:
    """Conv 3->6 (3x3) -> Relu -> Conv 6->6 stride 2 -> global average (and of the input) -> dense: logits name."""
    inits += [
        numpy_helper.from_array(rng.normal(0, 0.6, (6, channels, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.5, (6,)).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.4, (6, 6, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 4.0, (classes, 6 + channels)).astype(np.float32), "w3"),
        numpy_helper.from_array(np.zeros(classes, np.float32), "b3"),
    ]
    nodes += [
        helper.make_node("Conv", [start, "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c2"], ["gap_features"]),
        helper.make_node("GlobalAveragePool", [start], ["gap_colour"]),  # the mean colour counts too
        helper.make_node("Concat", ["gap_colour", "gap_features"], ["gap"], axis=1),
    ]
    if fixed_batch:  # as fixed-batch exporters write it: a Reshape to [1, -1]
        inits.append(numpy_helper.from_array(np.array([fixed_batch, -1], np.int64), "flat_shape"))
        nodes.append(helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"]))
    else:
        nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    nodes.append(helper.make_node("Gemm", ["flat", "w3", "b3"], ["logits"], transB=1))
    return "logits"


def foreign_classifier(
    path: Path,
    layout: str = "nchw",
    size: int = 24,
    classes: int = 5,
    dtype: str = "float32",
    fixed_batch: int | None = None,
    softmax: bool = False,
    metadata: dict[str, str] | None = None,
    opset: int = 17,
    seed: int = 0,
    dynamic_size: bool = False,
    channels: int = 3,
) -> Path:
    rng = np.random.default_rng(seed)
    elem = TensorProto.FLOAT16 if dtype == "float16" else TensorProto.FLOAT
    batch = fixed_batch or "batch"
    side = "height" if dynamic_size else size
    shape = [batch, channels, side, side] if layout == "nchw" else [batch, side, side, channels]
    nodes, inits = [], []
    current = "input"
    if dtype == "float16":
        nodes.append(helper.make_node("Cast", [current], ["input_f32"], to=TensorProto.FLOAT))
        current = "input_f32"
    if layout == "nhwc":
        nodes.append(helper.make_node("Transpose", [current], ["input_nchw"], perm=[0, 3, 1, 2]))
        current = "input_nchw"
    out = _conv_head(nodes, inits, rng, current, classes, fixed_batch, channels)
    if softmax:
        nodes.append(helper.make_node("Softmax", [out], ["scores"], axis=1))
        out = "scores"
    if dtype == "float16":
        nodes.append(helper.make_node("Cast", [out], ["scores_f16"], to=TensorProto.FLOAT16))
        out = "scores_f16"
    graph = helper.make_graph(
        nodes,
        "foreign",
        [helper.make_tensor_value_info("input", elem, shape)],
        [helper.make_tensor_value_info(out, elem, [batch, classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="some-other-tool")
    model.ir_version = IR_VERSION
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def preprocess_like_its_tool(images: np.ndarray, layout: str, mean, std, bgr: bool, dtype: str) -> np.ndarray:
    """uint8 RGB NHWC -> (pixel/255 - mean)/std, as timm/torchvision document it (independent of the pipeline)."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    if bgr:
        x = x[..., [2, 1, 0]]
    if layout == "nchw":
        x = np.transpose(x, (0, 3, 1, 2))
    return np.ascontiguousarray(x.astype(np.float16 if dtype == "float16" else np.float32))


def original_probabilities(
    path: Path,
    images: np.ndarray,
    layout: str,
    mean,
    std,
    bgr: bool = False,
    dtype: str = "float32",
    logits: bool = True,
    fixed_batch: int | None = None,
) -> np.ndarray:
    """The original file run directly in ONNX Runtime, softmax applied to logits (float64)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = preprocess_like_its_tool(images, layout, mean, std, bgr, dtype)
    name = session.get_inputs()[0].name
    step = fixed_batch or len(x)
    scores = np.concatenate([session.run(None, {name: x[i : i + step]})[0] for i in range(0, len(x), step)])
    scores = scores.astype(np.float64)
    if not logits:
        return scores
    e = np.exp(scores - scores.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def adopted_probabilities(path: Path, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fixed = session.get_inputs()[0].shape[0]
    step = fixed if isinstance(fixed, int) else len(images)
    return np.concatenate(
        [session.run(["probabilities"], {"image": images[i : i + step]})[0] for i in range(0, len(images), step)]
    ).astype(np.float64)


def sample_images(size: int, count: int = 10, seed: int = 3) -> np.ndarray:
    """Smooth random colour fields (not the pipeline's check images): uint8 RGB [count, size, size, 3]."""
    import cv2

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        small = rng.integers(0, 256, (2, 2, 3)).astype(np.uint8)
        images.append(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC))
    return np.stack(images)


def metadata_of(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def convert_to_float16(source: Path, target: Path) -> Path:
    """The same network computing in float16 throughout: weights, input and output (as fp16 exports are)."""
    model = onnx.load(str(source))
    for tensor in model.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name))
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target
