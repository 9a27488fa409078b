"""What an original classifier graph says about itself: its image input and its score output.

Every source kind hands the pipeline an ONNX graph (ONNX files as they are, Keras and
SavedModel sources converted), so the checks that decide whether a graph can be adopted
and the facts the settings start from — layout, size, batch, input type, class count —
are read here once, for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from training.adopt.source import AdoptError

FLOAT_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16"}
SCORE_TYPES = {**FLOAT_TYPES, onnx.TensorProto.DOUBLE: "float64"}
IMAGE_CHANNELS = (1, 3)


@dataclass(frozen=True)
class TensorFacts:
    """One graph input or output: its name, element type and shape (None for a symbolic dimension)."""

    name: str
    elem_type: int
    shape: tuple[int | None, ...] | None  # None: the graph does not say its rank

    @property
    def dtype(self) -> str:
        return onnx.helper.tensor_dtype_to_np_dtype(self.elem_type).name if self.elem_type else "unknown"

    def describe(self) -> str:
        shape = "?" if self.shape is None else "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"
        return f"'{self.name}' {self.dtype} {shape}"


def tensor_facts(value: onnx.ValueInfoProto) -> TensorFacts:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorFacts(value.name, 0, None)
    tensor = value.type.tensor_type
    shape = None
    if tensor.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
    return TensorFacts(value.name, tensor.elem_type, shape)


def image_input(graph: onnx.GraphProto, file_name: str) -> TensorFacts:
    """The one input that is not an initializer; AdoptError unless it is a float image tensor."""
    initializers = {t.name for t in graph.initializer}
    inputs = [tensor_facts(i) for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(f"'{i.name}'" for i in inputs) or "none"
        raise AdoptError(f"{file_name} has {len(inputs)} inputs ({names}); an image classifier takes one image tensor")
    facts = inputs[0]
    if facts.elem_type == onnx.TensorProto.UINT8:
        raise AdoptError(
            f"{file_name} already takes uint8 pixels (input {facts.describe()}): if that is NHWC RGB it is a "
            "ConvNet Studio model already (open it as it is); otherwise it only needs the metadata "
            "(docs/model-format.md), not adopting"
        )
    if facts.elem_type not in FLOAT_TYPES:
        raise AdoptError(f"{file_name}'s input {facts.describe()} is not a float image tensor (float32 or float16)")
    if facts.shape is None or len(facts.shape) != 4:
        rank = "unknown rank" if facts.shape is None else f"rank {len(facts.shape)}"
        raise AdoptError(
            f"{file_name}'s input {facts.describe()} is not an image ({rank}; adopt needs [N, C, H, W] or [N, H, W, C])"
        )
    return facts


def layout_from_shape(shape: tuple[int | None, ...]) -> str | None:
    """ "nchw" or "nhwc" when the channel axis (1 or 3 channels) can only be one place; else None."""
    at_1 = shape[1] in IMAGE_CHANNELS
    at_3 = shape[3] in IMAGE_CHANNELS
    if at_1 and not at_3:
        return "nchw"
    if at_3 and not at_1:
        return "nhwc"
    if at_1 and at_3 and shape[3] == 3 and shape[1] == 1:
        return "nhwc"  # [N, 1, W?, 3] is a one-pixel-high picture only in theory
    return None


def channel_axis(layout: str) -> int:
    return 1 if layout == "nchw" else 3


def spatial_size(shape: tuple[int | None, ...], layout: str) -> tuple[int | None, int | None]:
    return (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])


def check_image_shape(facts: TensorFacts, layout: str, file_name: str) -> int:
    """The channel count (1 or 3) in `layout`; AdoptError when the input has no image channel axis there."""
    channels = facts.shape[channel_axis(layout)]
    if channels is None:
        return 3  # symbolic channels: the adopted file feeds RGB
    if channels not in IMAGE_CHANNELS:
        raise AdoptError(
            f"{file_name}'s input {facts.describe()} has {channels} channels on its {layout.upper()} channel axis; "
            "an image has 1 or 3 (is --layout right?)"
        )
    return channels


def score_output(graph: onnx.GraphProto, file_name: str) -> TensorFacts:
    """The first output that is numeric [N, classes]; AdoptError naming what there is when none is."""
    outputs = [tensor_facts(o) for o in graph.output]
    for facts in outputs:
        if facts.elem_type in SCORE_TYPES and (facts.shape is None or len(facts.shape) == 2):
            return facts
    described = "; ".join(_describe_output(o) for o in outputs) or "no outputs"
    raise AdoptError(f"{file_name} gives no class scores (a numeric [N, classes] output): {described}")


def _describe_output(facts: TensorFacts) -> str:
    if facts.elem_type == onnx.TensorProto.STRING:
        return f"output '{facts.name}' is text (string)"
    if facts.elem_type == 0:
        return f"output '{facts.name}' is not a tensor (a map or sequence)"
    return f"output {facts.describe()}"


def class_count(facts: TensorFacts) -> int | None:
    return facts.shape[1] if facts.shape is not None and len(facts.shape) == 2 else None


def ends_in_softmax(graph: onnx.GraphProto, output_name: str) -> bool:
    """Whether the output comes straight from a Softmax (through Identity/Cast/Reshape/Flatten)."""
    producers = {out: node for node in graph.node for out in node.output}
    name = output_name
    for _ in range(8):
        node = producers.get(name)
        if node is None:
            return False
        if node.op_type == "Softmax":
            return True
        if node.op_type not in ("Identity", "Cast", "Reshape", "Flatten", "Squeeze"):
            return False
        name = node.input[0]
    return False


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
