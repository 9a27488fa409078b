"""Smaller ONNX models: fp16 weights or int8 static quantisation, checked against fp32.

A converted model keeps the model-file contract (docs/model-format.md) unchanged for its
readers: the input is still uint8 NHWC `image`, the outputs still float32
`probabilities` and `cam`, and all metadata is kept with `precision` set to "fp16" or
"int8". `convert_and_check` refuses a conversion whose top-1 predictions agree with the
fp32 model on fewer than PRECISION_THRESHOLDS of the check images.

ONNX Runtime notes (1.31, CPU):
- fp16 uses ONNX Runtime's own converter (`onnxruntime.transformers.float16`) with
  `keep_io_types=True`; onnxconverter-common's converter mishandles the uint8 input.
  On the CPU provider most fp16 ops have no fp16 kernel; ONNX Runtime then inserts
  Casts and computes them in fp32, so an fp16 file is half the size but not faster on
  CPU. Should a session still refuse an op ("Could not find an implementation for
  X"), `to_fp16` adds that op type to `op_block_list` (kept in fp32) and retries.
- tf2onnx leaves large fp32 constants that feed only `Shape` nodes (the Grad-CAM
  gradient graph); they are folded to their int64 shapes first, otherwise they stay
  fp32 and dominate the size of a "small" model.
- int8 runs `quant_pre_process` with `skip_symbolic_shape=True` (symbolic shape
  inference needs sympy, not a dependency) and then `quantize_static` in QDQ format,
  per-channel weights, signed int8 activations and weights (ONNX Runtime's recommended
  default for QDQ on CPU), MinMax calibration.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np

from convnet_common import model_format as fmt
from training.onnx_tools import fold_initializer_shapes

PRECISION_THRESHOLDS = {"fp16": 0.995, "int8": 0.98}


class PrecisionError(RuntimeError):
    """A conversion that cannot be trusted (or could not be made); the message says why."""


@dataclass
class Agreement:
    top1_agreement: float
    max_probability_difference: float
    images: int


# --------------------------------------------------------------------------- helpers


def _session(model):
    import onnxruntime as ort

    source = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _metadata(model) -> dict[str, str]:
    return {entry.key: entry.value for entry in model.metadata_props}


def _copy_metadata(source, target, precision: str) -> None:
    """`target` gets exactly `source`'s metadata (order kept) with `precision` replaced."""
    values = _metadata(source)
    values[fmt.KEY_PRECISION] = precision
    del target.metadata_props[:]
    for key, value in values.items():
        entry = target.metadata_props.add()
        entry.key, entry.value = key, value
    target.producer_name = source.producer_name
    target.producer_version = source.producer_version


def _io_signature(model) -> list[tuple[str, str, int]]:
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [("input", i.name, i.type.tensor_type.elem_type) for i in graph.input if i.name not in initializers]
    outputs = [("output", o.name, o.type.tensor_type.elem_type) for o in graph.output]
    return inputs + outputs


def _input_name(model) -> str:
    initializers = {init.name for init in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    return fmt.INPUT_NAME if fmt.INPUT_NAME in names else names[0]


_MISSING_KERNEL = re.compile(r"Could not find an implementation for (\w+)\(")


def to_fp16(model, op_block_list: list[str] | None = None, max_retries: int = 8):
    """fp16 weights and compute; uint8 input and float32 outputs unchanged."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    source = model
    model = fold_initializer_shapes(model)
    blocked = list(DEFAULT_OP_BLOCK_LIST) + [op for op in (op_block_list or []) if op not in DEFAULT_OP_BLOCK_LIST]
    for _ in range(max_retries + 1):
        converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked)
        try:
            _session(converted)
        except Exception as error:  # onnxruntime raises its own exception types
            missing = _MISSING_KERNEL.search(str(error))
            if missing is None or missing.group(1) in blocked:
                raise PrecisionError(f"the fp16 model does not load in ONNX Runtime: {error}") from error
            blocked.append(missing.group(1))  # keep this op type in fp32 and try again
            continue
        _copy_metadata(source, converted, "fp16")
        return converted
    raise PrecisionError(f"the fp16 model does not load in ONNX Runtime even with {blocked[-max_retries:]} kept in fp32")


# --------------------------------------------------------------------------- int8


def _calibration_reader(input_name: str, images: np.ndarray, batch_size: int):
    from onnxruntime.quantization import CalibrationDataReader

    class ImageReader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([images[i : i + batch_size] for i in range(0, len(images), batch_size)])

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

        def rewind(self):
            self.batches = iter([images[i : i + batch_size] for i in range(0, len(images), batch_size)])

    return ImageReader()


def to_int8(model, calibration_images: np.ndarray, per_channel: bool = True, batch_size: int = 32):
    """Static int8 quantisation (QDQ) calibrated on uint8 NHWC images."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibration_images = np.ascontiguousarray(calibration_images)
    if calibration_images.dtype != np.uint8 or calibration_images.ndim != 4 or not len(calibration_images):
        raise PrecisionError(
            f"calibration images must be a non-empty uint8 NHWC array, got {calibration_images.dtype} "
            f"{list(calibration_images.shape)}"
        )
    source = model
    model = fold_initializer_shapes(model)
    input_name = _input_name(model)
    with tempfile.TemporaryDirectory(prefix="convnet-int8-") as folder:
        fp32_path = os.path.join(folder, "fp32.onnx")
        prepared_path = os.path.join(folder, "prepared.onnx")
        int8_path = os.path.join(folder, "int8.onnx")
        onnx.save(model, fp32_path)
        try:
            quant_pre_process(fp32_path, prepared_path, skip_symbolic_shape=True)
        except Exception:  # pre-processing only helps; quantise the plain model instead
            prepared_path = fp32_path
        try:
            quantize_static(
                prepared_path,
                int8_path,
                _calibration_reader(input_name, calibration_images, batch_size),
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
            )
        except Exception as error:
            raise PrecisionError(f"int8 quantisation failed: {error}") from error
        converted = onnx.load(int8_path)
    _copy_metadata(source, converted, "int8")
    return converted


# --------------------------------------------------------------------------- checks


def _probabilities(session, images: np.ndarray, batch_size: int) -> np.ndarray:
    names = [o.name for o in session.get_outputs()]
    output = fmt.PROBABILITIES_OUTPUT if fmt.PROBABILITIES_OUTPUT in names else names[0]
    input_name = session.get_inputs()[0].name
    chunks = [session.run([output], {input_name: images[i : i + batch_size]})[0] for i in range(0, len(images), batch_size)]
    return np.concatenate(chunks).astype(np.float64)


def agreement(reference_session, candidate_session, images: np.ndarray, batch_size: int = 64) -> Agreement:
    """How often the candidate's top-1 class equals the reference's, and the largest probability gap."""
    if not len(images):
        raise PrecisionError("no check images to compare the models on")
    reference = _probabilities(reference_session, images, batch_size)
    candidate = _probabilities(candidate_session, images, batch_size)
    if reference.shape != candidate.shape:
        raise PrecisionError(f"the models disagree on the output shape: {reference.shape} vs {candidate.shape}")
    same = reference.argmax(axis=1) == candidate.argmax(axis=1)
    return Agreement(float(np.mean(same)), float(np.max(np.abs(reference - candidate))), len(images))


def convert_and_check(fp32_model, precision: str, calibration_images: np.ndarray | None, check_images: np.ndarray):
    """Convert to `precision` ("fp16" or "int8") and prove it agrees with the fp32 model.

    Returns (converted model, Agreement); raises PrecisionError when the top-1 agreement
    on `check_images` is below PRECISION_THRESHOLDS[precision].
    """
    if precision not in PRECISION_THRESHOLDS:
        raise PrecisionError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISION_THRESHOLDS)}")
    if precision == "fp16":
        converted = to_fp16(fp32_model)
    else:
        if calibration_images is None or not len(calibration_images):
            raise PrecisionError("int8 quantisation needs calibration images (e.g. the training images)")
        converted = to_int8(fp32_model, calibration_images)
    before, after = _io_signature(fp32_model), _io_signature(converted)
    if before != after:
        raise PrecisionError(f"the {precision} model changed its inputs/outputs: {before} became {after}")
    try:
        candidate = _session(converted)
    except Exception as error:
        raise PrecisionError(f"the {precision} model does not load in ONNX Runtime: {error}") from error
    result = agreement(_session(fp32_model), candidate, np.ascontiguousarray(check_images))
    threshold = PRECISION_THRESHOLDS[precision]
    if result.top1_agreement < threshold:
        changed = int(round((1.0 - result.top1_agreement) * result.images))
        raise PrecisionError(
            f"the {precision} model changes the top-1 class on {changed} of {result.images} check images "
            f"(agreement {result.top1_agreement:.4f}, required {threshold}); max probability difference "
            f"{result.max_probability_difference:.3f}. Keep fp32 for this model."
        )
    return converted, result
