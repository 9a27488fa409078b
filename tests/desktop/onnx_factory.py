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
            {
                "dataset": "synthetic",
                "image_count": 300,
                "train_images": 200,
                "val_images": 50,
                "val_accuracy": 0.98,
                "test_accuracy": 0.97,
                "epochs": 1,
                "weights": "none",
            }
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
        nodes,
        "colour_model",
        [helper.make_tensor_value_info("image", input_dtype, input_shape)],
        outputs,
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


# --- models whose answers are wrong: a valid file, a load that runs, outputs that lie ----------

HOSTILE_OUTPUTS = ("nan", "nan_on_red", "huge", "negative", "half", "zero_cam", "one_row", "inf_cam")


def hostile_output_model(kind: str, **kwargs: Any) -> onnx.ModelProto:
    """The colour model with its outputs rewritten to break the contract in one way (`kind`).

    nan: probabilities all NaN; nan_on_red: NaN where a channel's mean is 255 (pure red), so a
    black test image passes and real images fail; huge / negative: probabilities times
    231 / -231; half: rows summing to 0.5; zero_cam: a cam of shape [N, 0, 0, C];
    one_row: both outputs always keep only the first row, whatever the batch;
    inf_cam: probabilities fine, the map infinite.
    """
    assert kind in HOSTILE_OUTPUTS, kind
    model = build_model(**kwargs)
    graph = model.graph
    nodes: list[onnx.NodeProto] = []

    def reroute(name: str) -> str:
        raw = f"{name}_raw"
        for node in graph.node:
            node.output[:] = [raw if out == name else out for out in node.output]
        return raw

    def const(name: str, value: Any, dtype: Any = np.float32) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    if kind in ("nan", "huge", "negative", "half"):
        factor = {"nan": np.nan, "huge": 231.0, "negative": -231.0, "half": 0.5}[kind]
        nodes.append(helper.make_node("Mul", [reroute("probabilities"), const("factor", factor)], ["probabilities"]))
    elif kind == "nan_on_red":
        nodes += [
            helper.make_node("Sub", ["means", const("full", 255.0)], ["off_full"]),
            helper.make_node("Div", ["off_full", "off_full"], ["one_or_nan"]),
            helper.make_node("Mul", [reroute("probabilities"), "one_or_nan"], ["probabilities"]),
        ]
    elif kind == "inf_cam":
        nodes.append(helper.make_node("Mul", [reroute("cam"), const("inf", np.inf)], ["cam"]))
    elif kind == "zero_cam":
        nodes.append(
            helper.make_node(
                "Slice",
                [
                    reroute("cam"),
                    const("z0", [0, 0], np.int64),
                    const("z1", [0, 0], np.int64),
                    const("zaxes", [1, 2], np.int64),
                ],
                ["cam"],
            )
        )
    elif kind == "one_row":
        starts, ends, axes = const("r0", [0], np.int64), const("r1", [1], np.int64), const("raxes", [0], np.int64)
        for name in ("probabilities", "cam"):
            nodes.append(helper.make_node("Slice", [reroute(name), starts, ends, axes], [name]))
    graph.node.extend(nodes)
    classes = len(json.loads(dict((p.key, p.value) for p in model.metadata_props)["labels"]))
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", "h", "w", classes]),
        ]
    )
    onnx.checker.check_model(model)
    return model


def save_hostile_output_model(path: Path, kind: str, **kwargs: Any) -> Path:
    onnx.save(hostile_output_model(kind, **kwargs), str(path))
    return path


# --- graphs that explode only when run: tiny files, gigabytes or for ever at run time -----------

EXPLODING = ("constant_of_shape", "expand", "tile", "range", "loop", "if")
# Graphs whose sizes or time no reading of the file can bound: only a guarded run can.
EXPLODING_WHEN_RUN = ("runtime_constant_of_shape", "filling_constant_of_shape", "resize", "pad", "slow_matmul")


def exploding_model(kind: str) -> onnx.ModelProto:
    """The colour model whose probabilities also depend on a node that explodes when run (`kind`).

    constant_of_shape / expand / tile / range: a constant size asking for 1.6 billion
    float32 elements (6.4 GB); loop: a Loop whose trip count is 10^12; if: a branch (no
    harm in itself, but control flow is refused as a kind). The bomb's result is summed,
    multiplied by 0 and added to the probabilities, so the outputs stay valid.
    """
    assert kind in EXPLODING + EXPLODING_WHEN_RUN, kind
    model = build_model()
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["probabilities_raw" if out == "probabilities" else out for out in node.output]

    def const(name: str, value: Any, dtype: Any) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    big = [40_000, 40_000]
    nodes: list[onnx.NodeProto] = []
    if kind == "constant_of_shape":
        nodes.append(
            helper.make_node(
                "ConstantOfShape",
                [const("big", big, np.int64)],
                ["bomb"],
                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]),
            )
        )
    elif kind == "expand":
        nodes.append(
            helper.make_node("Expand", [const("one", [1.0], np.float32), const("big", big, np.int64)], ["bomb"])
        )
    elif kind == "tile":
        nodes.append(
            helper.make_node("Tile", [const("one", [[1.0]], np.float32), const("big", big, np.int64)], ["bomb"])
        )
    elif kind == "range":
        nodes.append(
            helper.make_node(
                "Range",
                [const("r0", 0.0, np.float32), const("r1", 1.6e9, np.float32), const("r2", 1.0, np.float32)],
                ["bomb"],
            )
        )
    elif kind in ("runtime_constant_of_shape", "filling_constant_of_shape"):
        # [N, 16, 16, 3] * [1, f, f, 1], computed when run: 19 GB (one allocation an address-space
        # limit refuses at once) or 3 GB (allowed, then filled page by page: only a watch stops it).
        factor = 2500 if kind == "runtime_constant_of_shape" else 1000
        nodes += [
            helper.make_node("Shape", ["image"], ["input_shape"]),
            helper.make_node("Mul", ["input_shape", const("factor", [1, factor, factor, 1], np.int64)], ["big_shape"]),
            helper.make_node(
                "ConstantOfShape", ["big_shape"], ["bomb"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])
            ),
        ]
    elif kind == "resize":  # the pixels scaled 2500 times in height and width
        nodes.append(
            helper.make_node(
                "Resize",
                ["pixels", "", const("scales", [1.0, 2500.0, 2500.0, 1.0], np.float32)],
                ["bomb"],
                mode="nearest",
            )
        )
    elif kind == "pad":  # 20,000 pixels of padding on every side
        nodes.append(helper.make_node("Pad", ["pixels", const("pads", [0, 20_000, 20_000, 0] * 2, np.int64)], ["bomb"]))
    elif kind == "slow_matmul":  # 60 products of 2000 x 2000 zero matrices: little memory, minutes of work
        nodes.append(
            helper.make_node(
                "Expand", [const("zero_f", [0.0], np.float32), const("square", [2000, 2000], np.int64)], ["m0"]
            )
        )
        for step in range(60):
            nodes.append(helper.make_node("MatMul", [f"m{step}", f"m{step}"], [f"m{step + 1}"]))
        nodes.append(helper.make_node("Identity", ["m60"], ["bomb"]))
    elif kind == "loop":
        body = helper.make_graph(
            [
                helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                helper.make_node("Add", ["acc_in", const("step", 1.0, np.float32)], ["acc_out"]),
            ],
            "body",
            [
                helper.make_tensor_value_info("i", TensorProto.INT64, []),
                helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, []),
            ],
            [
                helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, []),
            ],
        )
        nodes.append(
            helper.make_node(
                "Loop",
                [const("trips", 10**12, np.int64), const("go", True, np.bool_), const("acc0", 0.0, np.float32)],
                ["bomb"],
                body=body,
            )
        )
    elif kind == "if":
        branch = lambda name: helper.make_graph(  # noqa: E731 - a one-line helper read where it is used
            [helper.make_node("Constant", [], [name], value=helper.make_tensor("c", TensorProto.FLOAT, [], [0.0]))],
            f"{name}_graph",
            [],
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, [])],
        )
        nodes.append(
            helper.make_node(
                "If",
                [const("go", True, np.bool_)],
                ["bomb"],
                then_branch=branch("then_out"),
                else_branch=branch("else_out"),
            )
        )
    nodes += [
        helper.make_node("ReduceSum", ["bomb"], ["bomb_sum"], keepdims=0),
        helper.make_node("Mul", ["bomb_sum", const("zero", 0.0, np.float32)], ["nothing"]),
        helper.make_node("Add", ["probabilities_raw", "nothing"], ["probabilities"]),
    ]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


# --- models with an unknown score (issue 14): bright images are "unlike the training data" -------

UNKNOWN_THRESHOLD = 0.4
UNKNOWN_QUANTILES = [round(0.42 * i / 100, 6) for i in range(101)]  # 0.4 keeps 95.2 % of them


def unknown_metadata(threshold: float = UNKNOWN_THRESHOLD, **changes: Any) -> str:
    entry = {
        "method": "mean-brightness",
        "threshold": threshold,
        "accept_rate": 0.95,
        "quantiles": UNKNOWN_QUANTILES,
        "images": 50,
        **changes,
    }
    return json.dumps(entry)


def build_unknown_model(
    *, score: str = "brightness", threshold: float = UNKNOWN_THRESHOLD, calibration: bool = True, **kwargs: Any
) -> onnx.ModelProto:
    """The colour model plus an `unknown_score` output: the image's mean brightness (0..1).

    A pure white image scores 1.0 (unknown at the 0.4 threshold), a red one 0.33 and a
    mostly dark one about 0.2 (known). `score`: "brightness"; "nan" (always NaN, refused
    at load); "nan_on_white" (NaN where the brightness is exactly 1: an error per image).
    With `calibration`, the metadata also holds a `calibration` entry.
    """
    model = build_model(**kwargs)
    graph = model.graph

    def const(name: str, value: Any) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    nodes = [
        helper.make_node("ReduceMean", ["pixels"], ["mean_pixel"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean_pixel", const("inv255", 1.0 / 255.0)], ["brightness"]),
    ]
    if score == "nan":
        nodes.append(helper.make_node("Mul", ["brightness", const("nan", np.nan)], ["unknown_score"]))
    elif score == "nan_on_white":
        nodes += [
            helper.make_node("Sub", ["brightness", const("one", 1.0)], ["off_white"]),
            helper.make_node("Div", ["off_white", "off_white"], ["one_or_nan"]),
            helper.make_node("Mul", ["brightness", "one_or_nan"], ["unknown_score"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["brightness"], ["unknown_score"]))
    graph.node.extend(nodes)
    graph.output.append(helper.make_tensor_value_info("unknown_score", TensorProto.FLOAT, ["N"]))
    for key, value in (("unknown", unknown_metadata(threshold)),) + (
        (
            (
                "calibration",
                json.dumps({"method": "temperature", "temperature": 1.7, "ece_before": 0.081, "ece_after": 0.023}),
            ),
        )
        if calibration
        else ()
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


def save_unknown_model(path: Path, **kwargs: Any) -> Path:
    onnx.save(build_unknown_model(**kwargs), str(path))
    return path
