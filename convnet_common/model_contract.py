"""The one reader of the model-file contract (docs/model-format.md), for the app and for evaluate.

Both sides open a model the same way: `onnx_file.inspect_model_file` (metadata, unsafe
files refused), then an ONNX Runtime session of their own, then `read_contract` on the
metadata and the session's inputs and outputs, then one test run on
`contract.test_batch()` checked by `contract.check_test_run`. Each side keeps its
session (providers, threads and logging differ) and its error type; the rules and the
messages live here, so the app and `convnet-train evaluate` cannot accept different files.

The reader takes the session's input and output descriptions (anything with `name`,
`type` and `shape`, as ONNX Runtime's NodeArg has) rather than parsing them from the
protobuf: what ONNX Runtime reports is what will actually run, and the reader stays
plain Python that tests and fuzzers can call without a model file. It imports no
onnxruntime and no onnx.

Messages are one line and do not name the file; callers put the file name in front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from convnet_common import model_format as fmt
from convnet_common.resize_mode import STRETCHED, ResizeMode, ResizeModeError
from convnet_common.unknown_score import (
    UNKNOWN_OUTPUT,
    UnknownSpec,
    UnknownSpecError,
    read_calibration,
    read_unknown,
    score_problems,
)


class ContractError(ValueError):
    """The file breaks the model-file contract; the message is one line without the file name."""


class TensorDescription(Protocol):
    """One graph input or output as ONNX Runtime describes it (`session.get_inputs()[0]`)."""

    name: str
    type: str
    shape: Any  # a list of ints (fixed) and str/None (symbolic); may be None for non-tensors


ONNX_TYPE_NAMES = {
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}


@dataclass
class ModelMetadata:
    """The checked metadata. `has_metadata` False: a plain ONNX file, everything else empty.

    `format_version` alone decides whether a file is a ConvNet Studio model: a plain file's
    other keys (labels, input_size…) are ignored, on both sides.
    """

    has_metadata: bool
    labels: list[str] = field(default_factory=list)
    backbone: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    preprocessing: str = ""
    augmentation: Any = None
    precision: str = ""
    exported_at: str = ""
    cam_layer: str = ""
    # The optional finer map (`cam_fine`): its layer and method ("layercam"); "" when absent.
    cam_fine_layer: str = ""
    cam_fine_method: str = ""
    unknown: UnknownSpec | None = None  # the `unknown` entry (convnet_common/unknown_score.py)
    calibration: dict[str, Any] | None = None  # shown only
    # How images are fitted to the input (`resize`): stretch unless an adopted file says crop.
    resize: ResizeMode = STRETCHED


def _json(metadata: Mapping[str, str], key: str, expected: type | tuple[type, ...], what: str) -> Any:
    try:
        return fmt.metadata_json(metadata, key, expected, what)
    except fmt.MetadataError as error:
        raise ContractError(str(error)) from None


def read_metadata(metadata: Mapping[str, str], input_size: tuple[int, int]) -> ModelMetadata:
    """Check metadata sizes and contents against the contract, or raise ContractError.

    `input_size` is the input tensor's (height, width): a declared `input_size` must match it.
    """
    try:
        fmt.check_metadata_size(metadata)
    except fmt.MetadataError as error:
        raise ContractError(str(error)) from None
    if fmt.KEY_FORMAT_VERSION not in metadata:
        return ModelMetadata(has_metadata=False)
    version = metadata[fmt.KEY_FORMAT_VERSION]
    if version != fmt.FORMAT_VERSION:
        raise ContractError(
            f"model format version '{fmt.printable(version, 20)}' is not supported; "
            f"this app reads version {fmt.FORMAT_VERSION}"
        )
    if fmt.KEY_LABELS not in metadata:
        raise ContractError(f"model metadata has no '{fmt.KEY_LABELS}' entry (a JSON list of class names)")
    labels = _json(metadata, fmt.KEY_LABELS, list, "a JSON list of class names")
    if not labels or not all(isinstance(label, str) for label in labels):
        raise ContractError(f"model metadata '{fmt.KEY_LABELS}' must be a non-empty list of strings")
    if fmt.KEY_INPUT_SIZE in metadata:
        size = _json(metadata, fmt.KEY_INPUT_SIZE, list, "a JSON list [height, width]")
        if size != list(input_size):
            shown = fmt.printable(str(size), 40)
            raise ContractError(
                f"model metadata '{fmt.KEY_INPUT_SIZE}' is {shown} but the input tensor is {list(input_size)}"
            )
    result = ModelMetadata(has_metadata=True, labels=labels)
    if fmt.KEY_TRAINING in metadata:
        result.training = _json(metadata, fmt.KEY_TRAINING, dict, "a JSON object")
    if fmt.KEY_AUGMENTATION in metadata:
        result.augmentation = _json(metadata, fmt.KEY_AUGMENTATION, (dict, list), "a JSON object or list")
    result.backbone = metadata.get(fmt.KEY_BACKBONE, "")
    result.preprocessing = metadata.get(fmt.KEY_PREPROCESSING, "")
    result.precision = metadata.get(fmt.KEY_PRECISION, "")
    result.exported_at = metadata.get(fmt.KEY_EXPORTED_AT, "")
    result.cam_layer = metadata.get(fmt.KEY_CAM_LAYER, "")
    result.cam_fine_layer = metadata.get(fmt.KEY_CAM_FINE_LAYER, "")
    result.cam_fine_method = metadata.get(fmt.KEY_CAM_FINE_METHOD, "")
    try:
        result.unknown = read_unknown(metadata)
    except UnknownSpecError as error:
        raise ContractError(str(error)) from None
    result.calibration = read_calibration(metadata)
    result.resize = read_resize(metadata)
    return result


def read_resize(metadata: Mapping[str, str]) -> ResizeMode:
    """The `resize` entry (stretch when absent), or ContractError naming the key and what is wrong."""
    if fmt.KEY_RESIZE not in metadata:
        return STRETCHED
    value = _json(metadata, fmt.KEY_RESIZE, dict, 'a JSON object such as {"mode": "stretch"}')
    try:
        return ResizeMode.from_value(value)
    except ResizeModeError as error:
        raise ContractError(f"model metadata '{fmt.KEY_RESIZE}': {error}") from None


def describe_tensor(node: TensorDescription) -> str:
    """`uint8 [N, 16, 16, 3]`: a tensor's type and shape for a message, symbolic sizes by name."""
    dtype = ONNX_TYPE_NAMES.get(node.type, node.type)
    dims = ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in (node.shape or []))
    return fmt.printable(f"{dtype} [{dims}]", 120)


def read_input(inputs: Sequence[TensorDescription]) -> tuple[str, tuple[int, int], int | None]:
    """(input name, (height, width), fixed batch or None) of the one uint8 NHWC RGB input.

    Height and width must be fixed numbers in the graph, within MAX_INPUT_SIDE, and a
    fixed batch within MAX_PIXELS_PER_RUN: the test run must not allocate gigabytes.
    """
    if len(inputs) != 1:
        names = fmt.printable(", ".join(i.name for i in inputs), 120)
        raise ContractError(f"model must have exactly one input (an image); this file has {len(inputs)}: {names}")
    node = inputs[0]
    shape = list(node.shape or [])
    ok = (
        node.type == "tensor(uint8)"
        and len(shape) == 4
        and shape[3] == 3
        and all(isinstance(d, int) and d > 0 for d in shape[1:3])
    )
    if not ok:
        raise ContractError(
            "model input must be uint8 NHWC RGB [N, height, width, 3] with fixed height and width; "
            f"this file's input is {describe_tensor(node)}"
        )
    fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    height, width = int(shape[1]), int(shape[2])
    if max(height, width) > fmt.MAX_INPUT_SIDE:
        raise ContractError(
            f"model input is {height} x {width} pixels; at most {fmt.MAX_INPUT_SIDE:,} a side is supported"
        )
    if (fixed_batch or 1) * height * width > fmt.MAX_PIXELS_PER_RUN:
        raise ContractError(
            f"model input takes a fixed batch of {fixed_batch:,} images of {height} x {width}: "
            f"above the limit of {fmt.MAX_PIXELS_PER_RUN:,} pixels a run"
        )
    return node.name, (height, width), fixed_batch


def pick_probabilities_output(outputs: Sequence[TensorDescription], has_metadata: bool) -> str:
    """The output named `probabilities`; for a plain file only, else its one 2-D output."""
    names = [o.name for o in outputs]
    if fmt.PROBABILITIES_OUTPUT in names:
        return fmt.PROBABILITIES_OUTPUT
    two_d = [o.name for o in outputs if len(o.shape or []) == 2]
    if not has_metadata and len(two_d) == 1:
        return two_d[0]
    shown = fmt.printable(", ".join(names), 120)
    raise ContractError(f"model has no '{fmt.PROBABILITIES_OUTPUT}' output [N, classes]; its outputs are: {shown}")


@dataclass(frozen=True)
class CheckedTestRun:
    """What the test run established: the class names and whether activation maps work."""

    labels: list[str]
    has_cam: bool
    has_cam_fine: bool = False


@dataclass
class ModelContract:
    """How to run a model file, read from its metadata and its session's inputs and outputs."""

    input_name: str
    input_size: tuple[int, int]  # height, width
    fixed_batch: int | None  # some exporters fix the batch (usually to 1); callers split for them
    probabilities_name: str
    cam_name: str | None  # only for files with metadata: a plain file's `cam` is not trusted
    metadata: ModelMetadata
    # The `unknown_score` output, only with a valid `unknown` metadata entry to judge it by.
    unknown_name: str | None = None
    # The finer map `cam_fine`: optional (older files have none), only beside `cam`.
    cam_fine_name: str | None = None

    @property
    def test_outputs(self) -> list[str]:
        """The outputs the test run asks for: probabilities, then cam, cam_fine and unknown_score
        when there are (unknown_score stays last)."""
        return (
            [self.probabilities_name]
            + ([self.cam_name] if self.cam_name else [])
            + ([self.cam_fine_name] if self.cam_fine_name else [])
            + ([self.unknown_name] if self.unknown_name else [])
        )

    @property
    def test_batch_sizes(self) -> list[int]:
        """Batch sizes to test-run: the fixed batch, or 1 and 2 when the batch is dynamic.

        A graph that always answers one row passes a run of one image and breaks every
        larger batch; running two images at load refuses it before any folder is run.
        """
        return [self.fixed_batch] if self.fixed_batch else [1, 2]

    def test_batch(self, size: int | None = None) -> np.ndarray:
        """`size` black images (default: the fixed batch, or one): run them with `test_outputs`."""
        return np.zeros((size or self.fixed_batch or 1, *self.input_size, 3), dtype=np.uint8)

    def check_test_run(self, results: Sequence[Any], batch_size: int | None = None) -> CheckedTestRun:
        """Check the test run's outputs (in `test_outputs` order); the class names to use.

        The run gives the real class count and map shape even when the graph's output
        shapes are symbolic. A plain file's classes are named `class 0`, `class 1`, ….
        With `batch_size` (the images that were run) the outputs must have one row per
        image, and every answer must be valid (`answer_problems`): a model that answers
        NaN or 231 for a black image is refused at load, not trusted on real ones.
        """
        probs = np.asarray(results[0])
        if probs.ndim != 2 or probs.shape[1] < 1:
            raise ContractError(
                f"output '{fmt.printable(self.probabilities_name)}' must be [N, classes]; it gives {list(probs.shape)}"
            )
        if batch_size is not None and probs.shape[0] != batch_size:
            raise ContractError(
                f"output '{fmt.printable(self.probabilities_name)}' gives {probs.shape[0]} rows for a batch of "
                f"{batch_size} images; it must give one row per image"
            )
        class_count = int(probs.shape[1])
        labels = list(self.metadata.labels)
        if self.metadata.has_metadata and len(labels) != class_count:
            raise ContractError(
                f"model metadata lists {len(labels)} labels but '{fmt.printable(self.probabilities_name)}' "
                f"has {class_count} classes"
            )
        if not self.metadata.has_metadata:
            labels = [f"class {i}" for i in range(class_count)]
        maps = [(self.cam_name, results[1])] if self.cam_name else []
        if self.cam_fine_name:
            maps.append((self.cam_fine_name, results[2]))
        for name, values in maps:
            cam = np.asarray(values)
            rows = batch_size if batch_size is not None else cam.shape[0] if cam.ndim else -1
            if cam.ndim != 4 or cam.shape[-1] != class_count or min(cam.shape[1:3]) < 1 or cam.shape[0] != rows:
                raise ContractError(
                    f"output '{name}' must be [N, h, w, {class_count}]; it gives {list(cam.shape)} "
                    "(h and w at least 1, one map per image)"
                )
            if name == self.cam_fine_name and batch_size is not None and not np.all(np.isfinite(cam)):
                raise ContractError(
                    "model gives an invalid answer for a black test image: "
                    "the model's finer activation map (cam_fine) is not finite numbers (NaN or infinity)"
                )
        if batch_size is not None:
            problems = answer_problems(probs, np.asarray(results[1]) if self.cam_name else None)
            problem = next((p for p in problems if p is not None), None)
            if problem is not None:
                raise ContractError(f"model gives an invalid answer for a black test image: {problem}")
        if self.unknown_name:
            rows = batch_size if batch_size is not None else probs.shape[0]
            problems = score_problems(np.asarray(results[-1]), rows)
            if isinstance(problems, str):
                raise ContractError(problems)
            problem = next((p for p in problems if p is not None), None)
            if problem is not None:
                raise ContractError(f"model gives an invalid answer for a black test image: {problem}")
        return CheckedTestRun(labels, has_cam=self.cam_name is not None, has_cam_fine=self.cam_fine_name is not None)


# How far a valid answer may stray: fp16 and int8 files round each probability and their
# sums, so a row may miss 1 by a little; a logit, a NaN or a 231 is far outside.
PROBABILITY_TOLERANCE = 1e-3
ROW_SUM_TOLERANCE = 1e-2


def answer_problems(probabilities: np.ndarray, cam: np.ndarray | None = None) -> list[str | None]:
    """Per row: None for a valid answer, else one line saying what is wrong with it.

    Valid: every probability finite and within [0, 1] (± PROBABILITY_TOLERANCE), the row
    summing to 1 (± ROW_SUM_TOLERANCE), and the row's activation map, if any, finite.
    A bad answer is an error for that image, never a prediction: NaN would otherwise be
    "class 0 at nan %", and `nan < threshold` is false, so it would be sorted as sure.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    problems: list[str | None] = []
    for i, row in enumerate(probs):
        if not np.all(np.isfinite(row)):
            problems.append("the model's probabilities are not finite numbers (NaN or infinity)")
        elif row.min() < -PROBABILITY_TOLERANCE or row.max() > 1 + PROBABILITY_TOLERANCE:
            problems.append(
                f"the model's probabilities must lie between 0 and 1; it gave values from "
                f"{row.min():.4g} to {row.max():.4g}"
            )
        elif abs(float(row.sum()) - 1.0) > ROW_SUM_TOLERANCE:
            problems.append(f"the model's probabilities must sum to 1; they sum to {float(row.sum()):.4g}")
        elif cam is not None and not np.all(np.isfinite(cam[i])):
            problems.append("the model's activation map is not finite numbers (NaN or infinity)")
        else:
            problems.append(None)
    return problems


def read_contract(
    metadata: Mapping[str, str], inputs: Sequence[TensorDescription], outputs: Sequence[TensorDescription]
) -> ModelContract:
    """Check the input, the metadata and the outputs, in that order; raise ContractError.

    `metadata` is what `inspect_model_file` read; `inputs`/`outputs` are the session's.
    """
    input_name, input_size, fixed_batch = read_input(inputs)
    checked = read_metadata(metadata, input_size)
    probabilities_name = pick_probabilities_output(outputs, checked.has_metadata)
    names = [o.name for o in outputs]
    cam_name = fmt.CAM_OUTPUT if checked.has_metadata and fmt.CAM_OUTPUT in names else None
    # A score without its threshold (or a plain file's) cannot give a verdict: not run.
    unknown_name = UNKNOWN_OUTPUT if checked.unknown is not None and UNKNOWN_OUTPUT in names else None
    cam_fine_name = fmt.CAM_FINE_OUTPUT if cam_name and fmt.CAM_FINE_OUTPUT in names else None
    return ModelContract(
        input_name, input_size, fixed_batch, probabilities_name, cam_name, checked, unknown_name, cam_fine_name
    )
