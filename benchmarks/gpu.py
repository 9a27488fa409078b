"""Section 5: ONNX Runtime on CUDA, when this machine really has a usable CUDA device.

"Usable" means a session asked for CUDA reports CUDAExecutionProvider first: the
CUDA provider being *listed* only says onnxruntime-gpu is installed. When usable:
CUDA vs CPU throughput, fp32 vs fp16 (ONNX Runtime's converter with uint8 input and
float32 outputs kept, as training/precision.py exports), a batch-size sweep, and I/O
binding (input already on the device, outputs left there) vs a plain `run`.

Every measurement takes a provider and a device, so the tests exercise the same code
on the CPU provider (I/O binding works there too).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks.report import Row, rate, ratio

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
SWEEP = (1, 2, 4, 8, 16, 32, 64, 128)
COMPARE_BATCH = 32
_MISSING_KERNEL = re.compile(r"Could not find an implementation for (\w+)\(")


def _options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return options


def session(model: Path | bytes, provider: str) -> ort.InferenceSession:
    """A session on `provider` (with CPU behind CUDA for ops CUDA lacks)."""
    providers = [provider, CPU] if provider != CPU else [CPU]
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=_options(), providers=providers)


def cuda_status(model_path: Path) -> dict[str, Any]:
    """Whether a CUDA session really runs on CUDA here, and what ONNX Runtime lists."""
    if hasattr(ort, "preload_dlls"):
        # preload_dlls prints a line per missing CUDA library; the status below says it once.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                ort.preload_dlls()
            except Exception:
                pass
    listed = ort.get_available_providers()
    status: dict[str, Any] = {"providers_listed": listed, "usable": False}
    if CUDA not in listed:
        status["reason"] = "onnxruntime lists no CUDAExecutionProvider"
        return status
    ort.set_default_logger_severity(4)  # the failed CUDA load is reported below, not as a page of log
    try:
        in_use = session(model_path, CUDA).get_providers()[0]
    except Exception as error:
        status["reason"] = f"a CUDA session could not be created: {str(error).splitlines()[0][:200]}"
        return status
    status["provider_in_use"] = in_use
    status["usable"] = in_use == CUDA
    if not status["usable"]:
        status["reason"] = f"a session asked for CUDA runs on {in_use}"
    return status


def gpu_description() -> dict[str, str]:
    """GPU name and driver from nvidia-smi, if it is there."""
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        line = (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            .stdout.strip()
            .splitlines()[0]
        )
    except (OSError, subprocess.SubprocessError, IndexError):
        return {}
    name, _, driver = line.partition(",")
    return {"gpu": name.strip(), "driver": driver.strip()}


def fp16_model(model_path: Path, provider: str, retries: int = 8) -> bytes:
    """fp16 weights and compute with uint8 input and float32 outputs kept.

    An op type the provider has no fp16 kernel for is kept in fp32 and the conversion
    retried, as the project's exporter does.
    """
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    source = onnx.load(str(model_path))
    blocked = list(DEFAULT_OP_BLOCK_LIST)
    for _ in range(retries + 1):
        converted = convert_float_to_float16(source, keep_io_types=True, op_block_list=blocked)
        data = converted.SerializeToString()
        try:
            session(data, provider)
        except Exception as error:
            missing = _MISSING_KERNEL.search(str(error))
            if missing is None or missing.group(1) in blocked:
                raise
            blocked.append(missing.group(1))
            continue
        return data
    raise RuntimeError(f"fp16 model does not load even with {blocked[-retries:]} kept in fp32")


def throughput(sess: ort.InferenceSession, batch: int, min_seconds: float, device: str | None = None) -> float:
    """Images/s of one model at one batch size: warm-up, then runs for at least `min_seconds`.

    With `device`, I/O binding: the input is copied to the device once and the outputs
    stay there, so the rate excludes host-device transfers.
    """
    node = sess.get_inputs()[0]
    height, width = node.shape[1:3]
    images = np.random.default_rng(0).integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    output = sess.get_outputs()[0].name  # the probabilities: all a classifier needs
    if device is None:

        def call() -> None:
            sess.run([output], {node.name: images})
    else:
        binding = sess.io_binding()
        binding.bind_ortvalue_input(node.name, ort.OrtValue.ortvalue_from_numpy(images, device, 0))
        binding.bind_output(output, device)

        def call() -> None:
            sess.run_with_iobinding(binding)

    for _ in range(3):  # memory arenas, cuDNN algorithm search
        call()
    runs, started = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - started < min_seconds:
        call()
        runs += 1
    return runs * batch / (time.perf_counter() - started)


def measure(
    model_path: Path,
    provider: str = CUDA,
    device: str = "cuda",
    batches: Sequence[int] = SWEEP,
    compare_batch: int = COMPARE_BATCH,
    min_seconds: float = 1.0,
) -> dict[str, Any]:
    """Provider vs CPU, fp32 vs fp16, a batch sweep and I/O binding, all in images/s."""
    fp32 = session(model_path, provider)
    result: dict[str, Any] = {
        "model": model_path.name,
        "provider": provider,
        "provider_in_use": fp32.get_providers()[0],
        "device": device,
        "compare_batch": compare_batch,
        "min_seconds": min_seconds,
    }
    result["sweep_images_per_s"] = {str(b): throughput(fp32, b, min_seconds) for b in batches}
    result["fp32_images_per_s"] = throughput(fp32, compare_batch, min_seconds)
    result["iobinding_images_per_s"] = throughput(fp32, compare_batch, min_seconds, device=device)
    result["iobinding_over_run"] = result["iobinding_images_per_s"] / result["fp32_images_per_s"]
    cpu = session(model_path, CPU)
    result["cpu_fp32_images_per_s"] = throughput(cpu, compare_batch, min_seconds)
    result["provider_over_cpu"] = result["fp32_images_per_s"] / result["cpu_fp32_images_per_s"]
    del cpu
    try:
        half = session(fp16_model(model_path, provider), provider)
        result["fp16_images_per_s"] = throughput(half, compare_batch, min_seconds)
        result["fp16_over_fp32"] = result["fp16_images_per_s"] / result["fp32_images_per_s"]
    except Exception as error:
        result["fp16_error"] = str(error).splitlines()[0][:200]
    best = max(result["sweep_images_per_s"], key=result["sweep_images_per_s"].get)
    result["best_batch"] = int(best)
    return result


TITLE = "GPU (CUDA)"
METHOD = """\
Runs only where a session asked for CUDA reports CUDAExecutionProvider first (the
provider being *listed* only says onnxruntime-gpu is installed). Measures CUDA vs CPU
throughput, fp32 vs fp16 (ONNX Runtime's converter, uint8 input and float32 outputs kept,
as training/precision.py exports), a batch-size sweep from 1 to 128, and I/O binding
(input already on the device, output left there) vs a plain `run`. Rates are images/s
of the probabilities output on random uint8 images, after three warm-up runs."""


def rows(result: dict[str, Any]) -> tuple[list[Row], list[str]]:
    batch = result["compare_batch"]
    provider = result["provider_in_use"].replace("ExecutionProvider", "")
    table = [
        Row(f"{provider} fp32, batch {batch}", rate(result["fp32_images_per_s"])),
        Row(f"CPU fp32, batch {batch}", rate(result["cpu_fp32_images_per_s"])),
        Row(f"{provider} ÷ CPU", ratio(result["provider_over_cpu"])),
    ]
    if "fp16_images_per_s" in result:
        table += [
            Row(f"{provider} fp16, batch {batch}", rate(result["fp16_images_per_s"])),
            Row("fp16 ÷ fp32", ratio(result["fp16_over_fp32"])),
        ]
    table += [
        Row(f"{provider} fp32, batch {size}", rate(value)) for size, value in result["sweep_images_per_s"].items()
    ]
    table += [
        Row(f"{provider} fp32 with I/O binding, batch {batch}", rate(result["iobinding_images_per_s"])),
        Row("I/O binding ÷ plain run", ratio(result["iobinding_over_run"])),
    ]
    device = result.get("gpu_description") or {}
    notes = [
        f"Model {result.get('model', '?')}; device {device.get('gpu', 'unknown')}"
        f"{', driver ' + device['driver'] if device.get('driver') else ''}; best batch {result['best_batch']}; "
        f"each point timed for at least {result['min_seconds']:g} s."
    ]
    if "fp16_error" in result:
        notes.append(f"fp16 could not be measured: {result['fp16_error']}")
    return table, notes
