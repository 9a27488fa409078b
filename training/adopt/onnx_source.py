"""Read a foreign ONNX classifier (timm, torchvision, ONNX Model Zoo, Lobe, tf2onnx) as an AdoptSource.

The file comes from a stranger, so it passes the same file-level checks as any model the
app opens (convnet_common.onnx_file: damaged or truncated files, external data outside
the model's folder, control flow, oversized metadata) before the `onnx` package loads it,
then ONNX's checker, then the rules of adoption: one float image input, a numeric
[N, classes] output, operators ONNX Runtime has. What the file reveals about its
preprocessing — layout and size from the input's shape, pixel range and channel order
from Windows ML's `Image.*` metadata (the ONNX Model Zoo writes it), a softmax at the end,
a label file beside it, 1,000 scores — becomes `detected`, each with its origin.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx

from convnet_common.onnx_file import DamagedModelFile, ModelFileError, inspect_model_file
from training.adopt import graph_facts, labels
from training.adopt.source import KIND_ONNX, AdoptError, AdoptSource, Detected

# Domains whose operators ONNX Runtime implements; anything else must come from the model's
# own functions or it cannot run anywhere the app runs.
RUNTIME_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft", "ai.onnx.preview.training"})
# Windows ML's image metadata (also written by the ONNX Model Zoo): mean/std in 0-1 units.
NOMINAL_PIXEL_RANGES = {
    "NominalRange_0_255": ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)),
    "Normalized_0_1": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "Normalized_1_1": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
BITMAP_PIXEL_FORMATS = {"Bgr8": "bgr", "Rgb8": "rgb", "Bgra8": "bgr", "Rgba8": "rgb", "Gray8": "rgb"}


def load_checked(path: Path) -> onnx.ModelProto:
    """The model, loaded only after the file-level checks; AdoptError for anything unsafe or broken."""
    name = path.name
    try:
        inspect_model_file(path)
    except DamagedModelFile as error:
        raise AdoptError(f"{name} is not a loadable ONNX model (not ONNX, truncated or damaged: {error})") from None
    except ModelFileError as error:
        raise AdoptError(f"{name} is refused: {error}") from None
    except OSError as error:
        raise AdoptError(f"cannot read {name}: {error.strerror or error}") from None
    try:
        model = onnx.load(str(path), load_external_data=True)
    except Exception as error:  # noqa: BLE001 - protobuf and onnx raise many types for a bad file
        raise AdoptError(f"{name} is not a loadable ONNX model ({_first_line(error)})") from None
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - ValidationError, or ValueError for >2 GB protos
        raise AdoptError(f"{name} fails ONNX's model checker: {_first_line(error)}") from None
    refuse_custom_operators(model, name)
    return model


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]


def runtime_message(error: BaseException) -> str:
    """ONNX Runtime's message without its code prefix and the C++ function it came from."""
    text = str(error).strip()
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text.splitlines()[0] if text else type(error).__name__)
    if "onnxruntime::" in text and ") " in text:
        text = text.rsplit(") ", 1)[1]
    return text[:300]


def refuse_custom_operators(model: onnx.ModelProto, file_name: str) -> None:
    """AdoptError for a node from a domain ONNX Runtime does not implement (unless the file defines it)."""
    defined = {(f.domain, f.name) for f in model.functions}
    for node in _all_nodes(model.graph):
        if node.domain not in RUNTIME_DOMAINS and (node.domain, node.op_type) not in defined:
            raise AdoptError(
                f"{file_name} uses the custom operator {node.op_type} from domain '{node.domain}', which ONNX "
                "Runtime cannot run (export the model without custom operators)"
            )


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs] if attribute.type in (5, 10) else []:
                yield from _all_nodes(sub)


def detect_from_graph(model: onnx.ModelProto, file_name: str) -> tuple[dict[str, Detected], list[str]]:
    """Settings the graph itself reveals (shape, type, softmax, Image.* metadata), and notes to print."""
    graph = model.graph
    image = graph_facts.image_input(graph, file_name)
    scores = graph_facts.score_output(graph, file_name)
    detected: dict[str, Detected] = {}
    notes: list[str] = []
    shape_origin = f"the input tensor's shape {image.describe()}"
    layout = graph_facts.layout_from_shape(image.shape)
    if layout is not None:
        detected["layout"] = Detected(layout, shape_origin)
        height, width = graph_facts.spatial_size(image.shape, layout)
        if height and width:
            detected["input_size"] = Detected((height, width), shape_origin)
    detected["input_dtype"] = Detected(graph_facts.FLOAT_TYPES[image.elem_type], shape_origin)
    if image.shape[0] is not None:
        notes.append(f"the input's batch is fixed at {image.shape[0]}: the adopted file keeps it, and runs in chunks")
    if graph_facts.ends_in_softmax(graph, scores.name):
        detected["output"] = Detected("probabilities", f"output '{scores.name}' comes from a Softmax node")
    props = {p.key: p.value for p in model.metadata_props}
    pixel_range = props.get("Image.NominalPixelRange", "").strip()
    if pixel_range in NOMINAL_PIXEL_RANGES:
        mean, std = NOMINAL_PIXEL_RANGES[pixel_range]
        origin = f"the model's metadata Image.NominalPixelRange = {pixel_range}"
        detected["mean"] = Detected(mean, origin)
        detected["std"] = Detected(std, origin)
    elif pixel_range:
        notes.append(f"Image.NominalPixelRange = {pixel_range} is not supported here: give --mean and --std")
    pixel_format = props.get("Image.BitmapPixelFormat", "").strip()
    if pixel_format in BITMAP_PIXEL_FORMATS:
        detected["channel_order"] = Detected(
            BITMAP_PIXEL_FORMATS[pixel_format], f"the model's metadata Image.BitmapPixelFormat = {pixel_format}"
        )
    return detected, notes


def onnx_reference(path: Path, input_name: str, output_name: str, fixed_batch: int | None):
    """Run the original file in ONNX Runtime (CPU): a preprocessed batch -> float32 scores.

    The session is opened here, so a file ONNX Runtime cannot load (IR version, operators)
    is refused while reading, with ONNX Runtime's reason.

    A fixed-batch graph is run a chunk at a time (a short last chunk padded with its
    last image), as the app runs fixed-batch files.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - ONNX Runtime's own exception types
        raise AdoptError(f"ONNX Runtime cannot load {path.name}: {runtime_message(error)}") from None

    def reference(batch: np.ndarray) -> np.ndarray:
        step = fixed_batch or len(batch)
        results = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            count = len(chunk)
            if count < step:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - count, axis=0)])
            results.append(np.asarray(session.run([output_name], {input_name: chunk})[0], dtype=np.float32)[:count])
        return np.concatenate(results)

    return reference


def read_onnx_source(path: str | Path) -> AdoptSource:
    """Load, check and describe a foreign ONNX classifier; AdoptError when it cannot be adopted."""
    path = Path(path)
    model = load_checked(path)
    detected, notes = detect_from_graph(model, path.name)
    image = graph_facts.image_input(model.graph, path.name)
    scores = graph_facts.score_output(model.graph, path.name)
    _put_output_first(model.graph, scores.name)
    found = labels.detect_labels(path)
    if found is None and graph_facts.class_count(scores) == labels.IMAGENET_CLASSES:
        found = labels.imagenet_labels()
        if found is None:
            notes.append(
                "1000 scores look like ImageNet, but its class names are not on this machine: give --labels FILE"
            )
    if found is not None:
        detected["labels"] = found
    reference = onnx_reference(path, image.name, scores.name, image.shape[0])
    return AdoptSource(KIND_ONNX, path, model, reference, detected, notes)


def _put_output_first(graph: onnx.GraphProto, name: str) -> None:
    """The classifier output first among the graph's outputs, as AdoptSource promises."""
    outputs = list(graph.output)
    chosen = next(o for o in outputs if o.name == name)
    del graph.output[:]
    graph.output.extend([chosen] + [o for o in outputs if o.name != name])
