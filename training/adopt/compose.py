"""Put ConvNet Studio's uint8 RGB input in front of an original graph, and a softmax behind it.

Built by hand rather than with onnx.compose.merge_models: the preprocessing is a handful
of nodes, and writing them straight into the original graph keeps the original's opset
and IR version (merge_models needs both sides equal) and its tensor names, which the
original's own error messages and `cam_layer` refer to. Every op used (Cast, Mul, Add,
Gather, MatMul, Transpose, Softmax with an explicit axis, Identity) means the same from
opset 11 to today, so a source at opset 11 or later is composed at its own opset; an older
one is first converted to 13 with onnx.version_converter.

    image uint8 [N, H, W, 3] -> Cast float32 -> x * 1/(255 std) + (-mean/std)   (one Mul, one Add)
      -> BGR swap (Gather) -> grey (MatMul, 1-channel inputs) -> Transpose to NCHW
      -> Cast float16 (float16 inputs) -> the original graph -> Cast float32 -> Softmax (logits)
      -> probabilities [N, classes]   (and cam [N, h, w, classes] for Keras GAP heads)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convnet_common import model_format as fmt
from training.adopt import graph_facts
from training.adopt.source import AdoptError, AdoptSettings, AdoptSource

OLDEST_OPSET = 11
CONVERT_TO_OPSET = 13
PREFIX = "adopt/"
_RESERVED = (fmt.INPUT_NAME, fmt.PROBABILITIES_OUTPUT, fmt.CAM_OUTPUT)


def _all_names(graph: onnx.GraphProto) -> set[str]:
    names = {t.name for t in graph.initializer} | {v.name for v in graph.input} | {v.name for v in graph.output}
    names |= {v.name for v in graph.value_info}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename tensor `old` everywhere in the top-level graph (subgraphs refer by outer name too)."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _rename(attribute.g, old, new)
    for collection in (graph.input, graph.output, graph.value_info, graph.initializer):
        for item in collection:
            if item.name == old:
                item.name = new


def _free_reserved_names(graph: onnx.GraphProto) -> None:
    """The names the contract gives the new input and outputs must not already be taken inside."""
    names = _all_names(graph)
    for reserved in _RESERVED:
        if reserved in names:
            candidate = f"{reserved}__original"
            while candidate in names:
                candidate += "_"
            _rename(graph, reserved, candidate)


def _at_usable_opset(model: onnx.ModelProto, file_name: str) -> onnx.ModelProto:
    if graph_facts.default_opset(model) >= OLDEST_OPSET:
        return model
    try:
        return onnx.version_converter.convert_version(model, CONVERT_TO_OPSET)
    except Exception as error:  # noqa: BLE001 - the converter raises plain RuntimeError/ValueError
        raise AdoptError(
            f"{file_name} is at opset {graph_facts.default_opset(model)} and could not be converted to "
            f"{CONVERT_TO_OPSET}: {str(error).strip().splitlines()[0][:200] if str(error).strip() else error}"
        ) from None


def _constant(graph: onnx.GraphProto, name: str, values: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(values, PREFIX + name))
    return PREFIX + name


def _preprocessing_nodes(
    graph: onnx.GraphProto, settings: AdoptSettings, channels: int, target: str
) -> list[onnx.NodeProto]:
    """uint8 `image` -> the original's input tensor `target`, as check.preprocess computes it."""
    mean = np.asarray(settings.mean, np.float64)
    std = np.asarray(settings.std, np.float64)
    scale = _constant(graph, "scale", (1.0 / (255.0 * std)).astype(np.float32))
    shift = _constant(graph, "shift", (-mean / std).astype(np.float32))
    steps: list[tuple[str, list[str], dict]] = [
        ("Cast", [fmt.INPUT_NAME], {"to": TensorProto.FLOAT}),
        ("Mul", [None, scale], {}),
        ("Add", [None, shift], {}),
    ]
    if settings.channel_order == "bgr":
        steps.append(("Gather", [None, _constant(graph, "bgr", np.array([2, 1, 0], np.int64))], {"axis": 3}))
    if channels == 1:
        luma = np.array([0.299, 0.587, 0.114], np.float32)
        luma = luma[::-1] if settings.channel_order == "bgr" else luma
        steps.append(("MatMul", [None, _constant(graph, "luma", luma.reshape(3, 1).copy())], {}))
    if settings.layout == "nchw":
        steps.append(("Transpose", [None], {"perm": [0, 3, 1, 2]}))
    if settings.input_dtype == "float16":
        steps.append(("Cast", [None], {"to": TensorProto.FLOAT16}))
    nodes = []
    previous = None
    for index, (op, inputs, attributes) in enumerate(steps):
        output = target if index == len(steps) - 1 else f"{PREFIX}{op.lower()}_{index}"
        inputs = [previous if name is None else name for name in inputs]
        nodes.append(helper.make_node(op, inputs, [output], name=f"{PREFIX}{op}_{index}", **attributes))
        previous = output
    return nodes


def _output_nodes(
    graph: onnx.GraphProto, score: graph_facts.TensorFacts, name: str, softmax: bool
) -> list[onnx.NodeProto]:
    nodes = []
    current = score.name
    if score.elem_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [current], [f"{PREFIX}{name}_f32"], to=TensorProto.FLOAT))
        current = f"{PREFIX}{name}_f32"
    if softmax:
        nodes.append(helper.make_node("Softmax", [current], [name], axis=1, name=f"{PREFIX}Softmax"))
    else:
        nodes.append(helper.make_node("Identity", [current], [name], name=f"{PREFIX}Identity_{name}"))
    return nodes


def compose_graph(
    source: AdoptSource, settings: AdoptSettings, channels: int, softmax: bool | None = None
) -> onnx.ModelProto:
    """The original (or its cam graph) with the uint8 input in front and `probabilities` (+ `cam`) out.

    `softmax` defaults to settings.output == "logits"; the guarded first run passes False.
    """
    file_name = source.path.name
    original = source.cam_graph if source.cam_graph is not None else source.graph
    model = onnx.ModelProto()
    model.CopyFrom(original)
    model = _at_usable_opset(model, file_name)
    graph = model.graph
    _free_reserved_names(graph)
    image = graph_facts.image_input(graph, file_name)
    score = graph_facts.tensor_facts(graph.output[0])
    cam = graph_facts.tensor_facts(graph.output[1]) if source.cam_graph is not None else None
    batch = image.shape[0] if image.shape[0] is not None else "N"
    height, width = settings.input_size
    pre = _preprocessing_nodes(graph, settings, channels, image.name)
    post = _output_nodes(
        graph, score, fmt.PROBABILITIES_OUTPUT, settings.output == "logits" if softmax is None else softmax
    )
    outputs = [
        helper.make_tensor_value_info(
            fmt.PROBABILITIES_OUTPUT, TensorProto.FLOAT, [batch, score.shape and score.shape[1] or "classes"]
        )
    ]
    if cam is not None:
        post += _output_nodes(graph, cam, fmt.CAM_OUTPUT, False)
        # The checker refuses a graph output without a shape (the cam graph's keras_cam output has one).
        cam_dims = list(cam.shape[1:]) if cam.shape and len(cam.shape) == 4 else [None, None, None]
        cam_shape = [batch, *(d or name for d, name in zip(cam_dims, ("h", "w", "classes")))]
        outputs.append(helper.make_tensor_value_info(fmt.CAM_OUTPUT, TensorProto.FLOAT, cam_shape))
    original_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(pre + original_nodes + post)
    kept_inputs = [i for i in graph.input if i.name != image.name]
    del graph.input[:]
    graph.input.extend(
        [helper.make_tensor_value_info(fmt.INPUT_NAME, TensorProto.UINT8, [batch, height, width, 3]), *kept_inputs]
    )
    del graph.output[:]
    graph.output.extend(outputs)
    # The original's shape annotations of its input may be symbolic or another size: drop them.
    stale = [v for v in graph.value_info if v.name == image.name]
    for value in stale:
        graph.value_info.remove(value)
    model.producer_name = "convnet-studio (adopt)"
    del model.metadata_props[:]
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - ValidationError; a composing bug or an odd original
        raise AdoptError(
            f"the adopted graph for {file_name} is not valid ONNX: {str(error).splitlines()[0][:200]}"
        ) from None
    return model


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files in sorted order (SavedModel and Lobe folders)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode("utf-8", "surrogateescape") + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(2**20):
                digest.update(chunk)
    return digest.hexdigest()


def resize_entry(settings: AdoptSettings) -> dict:
    if settings.resize == "shorter-side-crop":
        return {"mode": fmt.RESIZE_SHORTER_SIDE_CROP, "crop_fraction": settings.crop_fraction}
    return {"mode": fmt.RESIZE_STRETCH}


def describe_preprocessing(settings: AdoptSettings, channels: int) -> str:
    """The human text of the `preprocessing` entry: what the graph does to the pixels."""
    mean = ", ".join(f"{v:g}" for v in settings.mean)
    std = ", ".join(f"{v:g}" for v in settings.std)
    steps = [f"adopted model: (pixel / 255 - [{mean}]) / [{std}] per RGB channel"]
    if settings.channel_order == "bgr":
        steps.append("channels reordered to BGR")
    if channels == 1:
        steps.append("converted to grey (0.299 R + 0.587 G + 0.114 B)")
    steps.append(f"{settings.layout.upper()} {settings.input_dtype} into the original graph")
    steps.append("softmax appended to its logits" if settings.output == "logits" else "its probabilities kept")
    if settings.resize == "shorter-side-crop":
        steps.append(f"images resized shorter side first and centre-cropped ({settings.crop_fraction:g})")
    return "; ".join(steps)


def adopted_metadata(source: AdoptSource, settings: AdoptSettings, channels: int) -> dict[str, str]:
    """The metadata_props of docs/model-format.md for an adopted file."""
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    values = {
        fmt.KEY_FORMAT_VERSION: fmt.FORMAT_VERSION,
        fmt.KEY_LABELS: json.dumps(list(settings.labels)),
        fmt.KEY_INPUT_SIZE: json.dumps(list(settings.input_size)),
        fmt.KEY_BACKBONE: f"adopted: {source.path.name}",
        fmt.KEY_PREPROCESSING: describe_preprocessing(settings, channels),
        fmt.KEY_PRECISION: "fp16" if settings.input_dtype == "float16" else "fp32",
        fmt.KEY_EXPORTED_AT: now,
        fmt.KEY_RESIZE: json.dumps(resize_entry(settings)),
        fmt.KEY_ADOPTED_FROM: json.dumps(
            {
                "kind": source.kind,
                "file": source.path.name,
                "sha256": file_sha256(source.path),
                "layout": settings.layout,
                "mean": list(settings.mean),
                "std": list(settings.std),
                "channel_order": settings.channel_order,
                "output": settings.output,
                "input_size": list(settings.input_size),
                "adopted_at": now,
            }
        ),
    }
    if source.cam_graph is not None and source.cam_layer:
        values[fmt.KEY_CAM_LAYER] = source.cam_layer
    return values


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
