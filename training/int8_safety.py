"""Why an int8 model gives the same answers on every x86 CPU, and how that is checked.

ONNX Runtime fuses a QDQ model's Conv/MatMul/Gemm into integer kernels that differ by
CPU. With uint8 activations and int8 weights, AVX2 and AVX-512 CPUs without VNNI
multiply with VPMADDUBSW, which adds two u8*s8 products into a saturating int16: with
full-range weights (|w| up to 127) a pair can reach 2*255*127 = 64,770 and is clipped at
32,767, so the same file answers differently there than on a VNNI CPU (VPDPBUSD adds in
int32). ONNX Runtime's quantisation guide gives the remedy for CPUs without VNNI:
7-bit weights (`reduce_range`, |w| <= 64, so a pair is at most 2*255*64 = 32,640) or
uint8 weights (u8u8 kernels widen to int16 before multiplying and add in int32). Then
no kernel saturates, integer arithmetic is exact, and the fused model's answers no
longer depend on which kernel ONNX Runtime picks.

Two checks make that a property of the file rather than of the machine it was made on:
- `saturating_operands` reads the quantised graph (no CPU involved) and names every
  integer-GEMM operand that could saturate somewhere: int8 weights outside [-64, 64], or
  an int8 activation as the second operand (its range is whatever the data gives).
- `reference_session` runs the same QDQ graph with graph optimisations off: nothing is
  fused, every QuantizeLinear/DequantizeLinear runs as written and Conv/MatMul run in
  float on the dequantised values, so no integer kernel is involved. When the fused
  session (what the app runs) agrees with it, the integer kernels changed nothing.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Ops that ONNX Runtime turns into integer GEMMs (QLinearConv, QLinearMatMul, QGemm);
# input 1 is the operand the u8s8 kernels read as signed bytes.
GEMM_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# |weight| <= 64: two u8*s8 products then stay within int16 (2*255*64 = 32,640).
SAFE_INT8_WEIGHT = 64
# CPU flags that decide which integer kernels ONNX Runtime runs (Linux /proc/cpuinfo names).
ISA_FLAGS = ("sse4_1", "avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8")


@dataclass(frozen=True)
class Int8Scheme:
    """How `to_int8` quantises: recorded in the model so a reader knows what was checked."""

    activations: str  # "uint8" | "int8"
    weights: str  # "uint8" | "int8"
    reduce_range: bool  # 7-bit weights ([-64, 64] for int8)
    per_channel: bool
    keep_float: tuple[str, ...] = ("Softmax",)  # op types left in float

    @property
    def name(self) -> str:
        letter = {"uint8": "U8", "int8": "S8"}
        bits = "+7-bit weights" if self.reduce_range else ""
        granularity = "per-channel" if self.per_channel else "per-tensor"
        return f"{letter[self.activations]}{letter[self.weights]}{bits}, {granularity}"

    def record(self) -> dict:
        return dict(asdict(self), keep_float=list(self.keep_float), format="QDQ", calibration="MinMax")


# Measured in benchmarks/bench_int8.py (numbers in its docstring): saturation-free on
# every x86 kernel, the fast u8s8 kernels kept, agreement as good as the full-range
# scheme's kernel-independent reference.
DEFAULT_SCHEME = Int8Scheme("uint8", "int8", reduce_range=True, per_channel=True)
# What export used before: full-range int8 weights, saturates on CPUs without VNNI.
FULL_RANGE_S8S8 = Int8Scheme("int8", "int8", reduce_range=False, per_channel=True, keep_float=())


def saturating_operands(model) -> list[str]:
    """Integer-GEMM operands of a QDQ model that can saturate on some x86 CPU; [] when none.

    Read from the graph alone, so the answer is the same on every machine.
    """
    from onnx import TensorProto, numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    dequantized_by = {node.output[0]: node for node in model.graph.node if node.op_type == "DequantizeLinear"}
    problems = []
    for node in model.graph.node:
        if node.op_type not in GEMM_OPS or len(node.input) < 2 or node.input[1] not in dequantized_by:
            continue
        dq = dequantized_by[node.input[1]]
        source = dq.input[0]
        if source in initializers:
            values = numpy_helper.to_array(initializers[source])
            largest = int(np.abs(values.astype(np.int16)).max(initial=0))
            if values.dtype == np.int8 and largest > SAFE_INT8_WEIGHT:
                problems.append(f"{node.name or node.op_type}: int8 weights up to {largest}")
        elif len(dq.input) > 2 and dq.input[2] in initializers:
            if initializers[dq.input[2]].data_type == TensorProto.INT8:
                problems.append(f"{node.name or node.op_type}: int8 activation '{source}' as second operand")
    return problems


def reference_session(model):
    """The QDQ graph run as written (no fusion): float maths on dequantised values."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _cpuinfo_fields(text: str) -> tuple[str, set[str]]:
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return name, flags


def cpu_description(cpuinfo: str | None = None) -> dict:
    """The CPU a check ran on: name, the ISA flags that pick ONNX Runtime's integer kernels,
    whether it has VNNI (None: unknown), and the ONNX Runtime version."""
    import onnxruntime

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    name, flags = _cpuinfo_fields(cpuinfo)
    known = bool(flags)
    if not known:  # not Linux: NumPy's own feature probe, if this NumPy has one
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            features = {}
        renamed = {
            "SSE41": "sse4_1",
            "AVX2": "avx2",
            "AVX512F": "avx512f",
            "AVX512_SKX": "avx512bw",
            "AVX512_CLX": "avx512_vnni",
        }
        flags = {flag for feature, flag in renamed.items() if features.get(feature)}
        known = bool(features)
    return {
        "cpu": name or platform.processor() or platform.machine() or "unknown",
        "architecture": platform.machine(),
        "isa": [flag for flag in ISA_FLAGS if flag in flags] if known else None,
        "vnni": any(flag in flags for flag in VNNI_FLAGS) if known else None,
        "cores": os.cpu_count(),
        "onnxruntime": onnxruntime.__version__,
        "execution_provider": "CPUExecutionProvider",
    }
