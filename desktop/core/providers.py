"""Which ONNX Runtime execution provider a model runs on, and when a CPU fallback is news.

The user's choice (auto, cuda, cpu) becomes the provider list ONNX Runtime is asked for;
when that ends on the CPU and the user would expect otherwise, a FALLBACK_NOTICES key
says why. `build_session` is the one place sessions get their options.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import onnxruntime as ort

from desktop.core.gpu import nvidia_gpu_present
from desktop.core.model_metadata import ModelLoadError

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
PROVIDER_CHOICES = ("auto", "cuda", "cpu")

NOTICE_CUDA_FALLBACK = "CUDA was chosen but is not usable on this machine; running on CPU."
NOTICE_GPU_UNUSABLE = (
    "An NVIDIA GPU is present but ONNX Runtime cannot use CUDA (are the CUDA and cuDNN runtime "
    "libraries installed? see GPU in the README); running on CPU."
)
# Why a CPU session is worth telling the user about; the keys are stable (settings store them).
FALLBACK_CUDA_CHOSEN = "cuda-chosen"
FALLBACK_GPU_UNUSABLE = "gpu-unusable"
FALLBACK_NOTICES = {FALLBACK_CUDA_CHOSEN: NOTICE_CUDA_FALLBACK, FALLBACK_GPU_UNUSABLE: NOTICE_GPU_UNUSABLE}


def fallback_reason(provider: str) -> str | None:
    """Why running on the CPU would surprise the user, or None when it would not.

    They chose CUDA themselves, or an NVIDIA GPU is there but unusable. On a machine
    without one, Auto means CPU and no notice: the status bar shows the provider.
    """
    if provider == "cuda":
        return FALLBACK_CUDA_CHOSEN
    if provider == "auto" and nvidia_gpu_present():
        return FALLBACK_GPU_UNUSABLE
    return None


def resolve_providers(provider: str) -> tuple[list[str], str | None]:
    """Providers to ask ONNX Runtime for, and the notice (a FALLBACK_NOTICES key) if CPU is all it gives."""
    if provider not in PROVIDER_CHOICES:
        raise ModelLoadError(f"unknown provider '{provider}'; choose one of {', '.join(PROVIDER_CHOICES)}")
    if provider == "cpu":
        return [CPU_PROVIDER], None
    if hasattr(ort, "preload_dlls"):
        # preload_dlls prints one line per missing CUDA library; the fallback notice says it better.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                ort.preload_dlls()
            except Exception:  # noqa: BLE001 - a failed preload only means CUDA will not be used
                pass
    cuda_listed = CUDA_PROVIDER in ort.get_available_providers()
    # Without the CUDA provider (explicit "cuda" included): ask for CPU and report the fallback if it matters.
    return ([CUDA_PROVIDER, CPU_PROVIDER] if cuda_listed else [CPU_PROVIDER]), fallback_reason(provider)


def build_session(path: Path, providers: list[str], intra_op_threads: int = 0) -> ort.InferenceSession:
    # Severity 4 (fatal only) on the default logger: without it a CPU-only machine with
    # onnxruntime-gpu prints a CUDA library error on every load. The fallback is reported
    # to the user as a notice instead. The session logs fatal errors only as well: every
    # error also comes back as an exception, which the caller turns into one line (a
    # broken model's failed test run otherwise adds ORT's own lines on stderr).
    ort.set_default_logger_severity(4)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    # 0 = one thread per core, best for the latency of a single image.
    options.intra_op_num_threads = intra_op_threads
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)
