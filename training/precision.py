"""Smaller ONNX models: fp16 weights or int8 static quantisation, checked against fp32.

A converted model keeps the model-file contract (docs/model-format.md) unchanged for its
readers: the input is still uint8 NHWC `image`, the outputs still float32
`probabilities` and `cam`, and all metadata is kept with `precision` set to "fp16" or
"int8", plus a `precision_check` entry saying what the conversion was checked on.
`convert_and_check` refuses a conversion whose top-1 predictions agree with the fp32
model on fewer than PRECISION_THRESHOLDS of the check images.

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
  MinMax calibration, with uint8 activations, per-channel 7-bit int8 weights and the
  softmax left in float (`int8_safety.DEFAULT_SCHEME`). Full-range int8 weights (the
  earlier choice) saturate in the integer kernels of CPUs without VNNI, so one file
  answered differently on different machines; see training/int8_safety.py. The int8
  check therefore also proves that the graph cannot saturate and that the fused model
  (what the app runs) agrees with the kernel-independent reference.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np

from convnet_common import model_format as fmt
from convnet_common.unknown_score import UNKNOWN_OUTPUT
from training.int8_safety import DEFAULT_SCHEME, Int8Scheme, cpu_description, reference_session, saturating_operands
from training.onnx_tools import fold_initializer_shapes

PRECISION_THRESHOLDS = {"fp16": 0.995, "int8": 0.98}
# Nodes whose name contains one of these stay in float in int8 files, whatever their op:
# the unknown score's whitening product (training.unknown_score) would lose the small
# directions of the feature space to 7-bit weights. The finer map's backward pass
# (training.fine_cam) re-uses convolution kernels in ConvTranspose nodes, whose per-channel
# quantisation axis differs from the Conv's: quantised, the shared kernel breaks the run.
KEEP_FLOAT_NODES = (UNKNOWN_OUTPUT, fmt.CAM_FINE_OUTPUT)
# The fused int8 model against the same graph run without fusion (int8_safety). With no
# saturation the integer arithmetic is exact and only requantisation rounding differs,
# which can flip a near-tie now and then; a saturating kernel changes several in a
# hundred (3.3 % on the LeNet fixture on an AVX2 CPU, benchmarks/bench_int8.py).
KERNEL_AGREEMENT_THRESHOLD = 0.99


class PrecisionError(RuntimeError):
    """A conversion that cannot be trusted (or could not be made); the message says why."""


@dataclass
class Agreement:
    top1_agreement: float
    max_probability_difference: float
    images: int


# --------------------------------------------------------------------------- helpers


def _session(model, reference: bool = False):
    """A CPU session as the app makes it (all graph optimisations, so int8 runs fused integer
    kernels), or with `reference` the unfused, kernel-independent int8 reference."""
    import onnxruntime as ort

    if reference:
        return reference_session(model)
    source = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _metadata(model) -> dict[str, str]:
    return {entry.key: entry.value for entry in model.metadata_props}


def _copy_metadata(source, target, precision: str) -> None:
    """`target` gets exactly `source`'s metadata (order kept) with `precision` replaced
    (and no `precision_check`: convert_and_check writes the one for this conversion)."""
    values = _metadata(source)
    values[fmt.KEY_PRECISION] = precision
    values.pop(fmt.KEY_PRECISION_CHECK, None)
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
    raise PrecisionError(
        f"the fp16 model does not load in ONNX Runtime even with {blocked[-max_retries:]} kept in fp32"
    )


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


def to_int8(model, calibration_images: np.ndarray, scheme: Int8Scheme = DEFAULT_SCHEME, batch_size: int = 32):
    """Static int8 quantisation (QDQ) calibrated on uint8 NHWC images, as `scheme` says.

    Op types in `scheme.keep_float` stay in float: the softmax, so that probabilities are
    not rounded to 1/255 steps (near-equal classes would otherwise tie).
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibration_images = np.ascontiguousarray(calibration_images)
    if calibration_images.dtype != np.uint8 or calibration_images.ndim != 4 or not len(calibration_images):
        raise PrecisionError(
            f"calibration images must be a non-empty uint8 NHWC array, got {calibration_images.dtype} "
            f"{list(calibration_images.shape)}"
        )
    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    source = model
    model = fold_initializer_shapes(model)
    input_name = _input_name(model)
    with tempfile.TemporaryDirectory(prefix="convnet-int8-") as folder:  # scratch files, deleted below
        fp32_path = os.path.join(folder, "fp32.onnx")
        prepared_path = os.path.join(folder, "prepared.onnx")
        int8_path = os.path.join(folder, "int8.onnx")
        onnx.save(model, fp32_path)
        try:
            quant_pre_process(fp32_path, prepared_path, skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing only helps; quantise the plain model instead
            prepared_path = fp32_path
        prepared = onnx.load(prepared_path)
        keep_float = [
            node.name
            for node in prepared.graph.node
            if node.op_type in scheme.keep_float or any(part in node.name for part in KEEP_FLOAT_NODES)
        ]
        try:
            quantize_static(
                prepared_path,
                int8_path,
                _calibration_reader(input_name, calibration_images, batch_size),
                quant_format=QuantFormat.QDQ,
                per_channel=scheme.per_channel,
                reduce_range=scheme.reduce_range,
                activation_type=types[scheme.activations],
                weight_type=types[scheme.weights],
                nodes_to_exclude=keep_float,
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
    chunks = [
        session.run([output], {input_name: images[i : i + batch_size]})[0] for i in range(0, len(images), batch_size)
    ]
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


def _refuse_if_below(precision: str, result: Agreement, threshold: float, where: str) -> None:
    if result.top1_agreement < threshold:
        changed = int(round((1.0 - result.top1_agreement) * result.images))
        raise PrecisionError(
            f"the {precision} model changes the top-1 class on {changed} of {result.images} check images{where} "
            f"(agreement {result.top1_agreement:.4f}, required {threshold}); max probability difference "
            f"{result.max_probability_difference:.3f}. Keep fp32 for this model."
        )


def _check_int8(converted, fp32_session, candidate, check_images: np.ndarray) -> dict:
    """The int8-only checks, in the order that names the real cause; returns their numbers.

    1. no integer-GEMM operand can saturate (read from the graph: true on every CPU);
    2. the kernel-independent reference agrees with fp32 (the answers on any CPU);
    3. the fused model on this CPU agrees with that reference (its kernels changed nothing).
    """
    threshold = PRECISION_THRESHOLDS["int8"]
    risky = saturating_operands(converted)
    if risky:
        shown = "; ".join(risky[:3]) + (f"; and {len(risky) - 3} more" if len(risky) > 3 else "")
        raise PrecisionError(
            f"the int8 model can saturate in the integer kernels of CPUs without VNNI (AVX2, AVX-512), so its "
            f"answers would depend on the CPU: {shown}. Quantise with 7-bit or uint8 weights and uint8 activations."
        )
    reference = _session(converted, reference=True)
    independent = agreement(fp32_session, reference, check_images)
    _refuse_if_below("int8", independent, threshold, " even without ONNX Runtime's integer kernels")
    kernels = agreement(reference, candidate, check_images)
    if kernels.top1_agreement < KERNEL_AGREEMENT_THRESHOLD:
        changed = int(round((1.0 - kernels.top1_agreement) * kernels.images))
        cpu = cpu_description()
        raise PrecisionError(
            f"ONNX Runtime's integer kernels on this CPU ({cpu['cpu']}, VNNI: {cpu['vnni']}) change the int8 "
            f"model's top-1 class on {changed} of {kernels.images} check images compared with the same graph "
            f"run without them (agreement {kernels.top1_agreement:.4f}, required {KERNEL_AGREEMENT_THRESHOLD}; "
            f"max probability difference {kernels.max_probability_difference:.3f}), so its answers depend on "
            f"the CPU. Keep fp32 for this model."
        )
    return {
        "reference_top1_agreement": round(independent.top1_agreement, 6),
        "reference_max_probability_difference": round(independent.max_probability_difference, 6),
        "kernel_top1_agreement": round(kernels.top1_agreement, 6),
        "kernel_max_probability_difference": round(kernels.max_probability_difference, 6),
        "required_kernel_agreement": KERNEL_AGREEMENT_THRESHOLD,
        "saturation_free": True,
    }


def _record_check(converted, record: dict) -> None:
    """Store `record` as the model's `precision_check` metadata (JSON, docs/model-format.md)."""
    entry = converted.metadata_props.add()
    entry.key, entry.value = fmt.KEY_PRECISION_CHECK, json.dumps(record)


def convert_and_check(
    fp32_model,
    precision: str,
    calibration_images: np.ndarray | None,
    check_images: np.ndarray,
    scheme: Int8Scheme = DEFAULT_SCHEME,
):
    """Convert to `precision` ("fp16" or "int8") and prove it agrees with the fp32 model.

    Returns (converted model, Agreement of the model as the app runs it with fp32); the
    model's `precision_check` metadata records the numbers and the CPU they were measured
    on. Raises PrecisionError when the top-1 agreement on `check_images` is below
    PRECISION_THRESHOLDS[precision], and for int8 also when the graph could saturate on
    some CPU or the fused integer kernels disagree with the kernel-independent reference.
    """
    if precision not in PRECISION_THRESHOLDS:
        raise PrecisionError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISION_THRESHOLDS)}")
    if precision == "fp16":
        converted = to_fp16(fp32_model)
    else:
        if calibration_images is None or not len(calibration_images):
            raise PrecisionError("int8 quantisation needs calibration images (e.g. the training images)")
        converted = to_int8(fp32_model, calibration_images, scheme)
    before, after = _io_signature(fp32_model), _io_signature(converted)
    if before != after:
        raise PrecisionError(f"the {precision} model changed its inputs/outputs: {before} became {after}")
    try:
        candidate = _session(converted)
    except Exception as error:
        raise PrecisionError(f"the {precision} model does not load in ONNX Runtime: {error}") from error
    check_images = np.ascontiguousarray(check_images)
    fp32_session = _session(fp32_model)
    record: dict = {"precision": precision}
    if precision == "int8":
        record["quantization"] = dict(scheme.record(), calibration_images=int(len(calibration_images)))
        record.update(_check_int8(converted, fp32_session, candidate, check_images))
    result = agreement(fp32_session, candidate, check_images)
    _refuse_if_below(precision, result, PRECISION_THRESHOLDS[precision], "")
    record.update(
        check_images=result.images,
        top1_agreement=round(result.top1_agreement, 6),
        max_probability_difference=round(result.max_probability_difference, 6),
        required_top1_agreement=PRECISION_THRESHOLDS[precision],
        checked_on=dict(cpu_description(), graph_optimization="all (as the app runs it)"),
    )
    _record_check(converted, record)
    return converted, result
