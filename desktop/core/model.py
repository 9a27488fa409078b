"""Load a ConvNet Studio ONNX file into ONNX Runtime and check it against the contract.

Every way a model file can be wrong is turned into a `ModelLoadError` with a one-line
message a user can act on, so neither the app nor the CLI ever shows a traceback for a
bad file. Files without ConvNet Studio metadata still classify (generic class names,
no activation maps) as long as their input is uint8 NHWC RGB with a fixed size.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from convnet_common.model_contract import ContractError, read_contract
from convnet_common.onnx_file import DamagedModelFile, ModelFileError, inspect_model_file
from desktop.core.gpu import nvidia_gpu_present
from desktop.core.model_metadata import ModelInfo, ModelLoadError, info_from_checked, info_from_metadata

__all__ = [
    "CPU_PROVIDER", "CUDA_PROVIDER", "FALLBACK_CUDA_CHOSEN", "FALLBACK_GPU_UNUSABLE", "FALLBACK_NOTICES",
    "NOTICE_CUDA_FALLBACK", "NOTICE_GPU_UNUSABLE", "NOTICE_NO_CAM", "NOTICE_NO_METADATA", "PROVIDER_CHOICES",
    "LoadedModel", "ModelInfo", "ModelLoadError", "first_line", "info_from_metadata", "load_model",
    "nvidia_gpu_present",
]

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
PROVIDER_CHOICES = ("auto", "cuda", "cpu")

NOTICE_NO_METADATA = "This model has no ConvNet Studio metadata: generic class names, no activation maps."
NOTICE_NO_CAM = "This model has no activation-map output; activation maps are unavailable."
NOTICE_CUDA_FALLBACK = "CUDA was chosen but is not usable on this machine; running on CPU."
NOTICE_GPU_UNUSABLE = (
    "An NVIDIA GPU is present but ONNX Runtime cannot use CUDA (are the CUDA and cuDNN runtime "
    "libraries installed? see GPU in the README); running on CPU."
)
# Why a CPU session is worth telling the user about; the keys are stable (settings store them).
FALLBACK_CUDA_CHOSEN = "cuda-chosen"
FALLBACK_GPU_UNUSABLE = "gpu-unusable"
FALLBACK_NOTICES = {FALLBACK_CUDA_CHOSEN: NOTICE_CUDA_FALLBACK, FALLBACK_GPU_UNUSABLE: NOTICE_GPU_UNUSABLE}

class LoadedModel:
    """An ONNX Runtime session plus the contract details needed to run it.

    `predict` may be called from worker threads: ONNX Runtime sessions are thread-safe.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        info: ModelInfo,
        input_name: str,
        probabilities_name: str,
        cam_name: str | None,
        fixed_batch: int | None,
        cuda_fallback: str | None = None,
    ) -> None:
        self.session = session
        self.info = info
        self.input_name = input_name
        self.probabilities_name = probabilities_name
        self.cam_name = cam_name if info.has_cam else None
        # Some exporters fix the batch dimension (usually to 1); predict() splits for them.
        self.fixed_batch = fixed_batch
        self.provider_in_use: str = session.get_providers()[0]
        # A FALLBACK_NOTICES key when this CPU session is news to the user, else None.
        self.cuda_fallback = cuda_fallback
        self._throughput_lock = threading.Lock()
        self._throughput_session: ort.InferenceSession | None = None
        self._throughput_batch: int | None = None

    @property
    def input_size(self) -> tuple[int, int]:
        return self.info.input_size

    @property
    def on_cpu(self) -> bool:
        return self.provider_in_use == CPU_PROVIDER

    def throughput_session(self) -> ort.InferenceSession:
        """The session for folder runs, where several workers each run whole images at once.

        On CPU that is a second session with one intra-op thread: one worker per core,
        each decoding and then running its own images, keeps both cores busy, where one
        multi-threaded run at a time leaves them waiting on each other and on decoding
        (measured in docs/benchmarks.md). Built on first use, so a model that never runs
        a folder costs no extra memory. On a GPU the main session serves every worker.
        """
        if not self.on_cpu:
            return self.session
        with self._throughput_lock:
            if self._throughput_session is None:
                self._throughput_session = _build_session(self.info.path, [CPU_PROVIDER], intra_op_threads=1)
            return self._throughput_session

    def throughput_batch_size(self) -> int:
        """Images per run for folder runs, found by timing this model on this machine once.

        Doubles the batch while the time per image still drops by 10 % or more: small
        models gain from amortising the call overhead, big ones on a CPU do not.
        """
        with self._throughput_lock:
            cached = self._throughput_batch
        if cached is not None:
            return cached
        session = self.throughput_session()
        if self.fixed_batch:
            chosen = self.fixed_batch
        else:
            chosen = _measure_batch_size(lambda batch: self._run(session, batch), self.info.input_size)
        with self._throughput_lock:
            self._throughput_batch = chosen
        return chosen

    def release_throughput_session(self) -> None:
        """Give back the folder-run session's memory (the next folder run builds it again)."""
        with self._throughput_lock:
            self._throughput_session = None

    def predict(self, batch: np.ndarray, *, throughput: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Run a uint8 NHWC batch; return probabilities [N, C] and cam [N, h, w, C] or None.

        `throughput=True` uses the folder-run session (see throughput_session).
        """
        height, width = self.info.input_size
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (height, width, 3):
            raise ValueError(f"expected a uint8 batch [N, {height}, {width}, 3], got {batch.dtype} {list(batch.shape)}")
        return self._run(self.throughput_session() if throughput else self.session, batch)

    def _run(self, session: ort.InferenceSession, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        step = self.fixed_batch or max(len(batch), 1)
        outputs = [self.probabilities_name] + ([self.cam_name] if self.cam_name else [])
        probabilities: list[np.ndarray] = []
        cams: list[np.ndarray] = []
        for start in range(0, len(batch), step):
            chunk = np.ascontiguousarray(batch[start : start + step])
            results = session.run(outputs, {self.input_name: chunk})
            probabilities.append(np.asarray(results[0], dtype=np.float32))
            if self.cam_name:
                cams.append(np.asarray(results[1], dtype=np.float32))
        probs = np.concatenate(probabilities) if probabilities else np.zeros((0, len(self.info.labels)), np.float32)
        cam = np.concatenate(cams) if cams else None
        return probs, cam


MAX_MEASURED_BATCH = 64
_BATCH_MEASURE_BUDGET_S = 0.05


def _measure_batch_size(run: Any, input_size: tuple[int, int], clock: Any = time.perf_counter) -> int:
    """The batch size after which doubling stops paying (see LoadedModel.throughput_batch_size)."""

    def seconds_per_image(size: int) -> float:
        batch = np.zeros((size, *input_size, 3), np.uint8)
        best = float("inf")
        for _ in range(2):  # best of two: the first run of a new shape pays for allocation
            started = clock()
            run(batch)
            best = min(best, clock() - started)
        return best / size

    size, per_image = 1, seconds_per_image(1)
    while size < MAX_MEASURED_BATCH and per_image * size * 2 < _BATCH_MEASURE_BUDGET_S:
        candidate = seconds_per_image(size * 2)
        if candidate > per_image * 0.9:
            break
        size, per_image = size * 2, candidate
    return size


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, shortened: ORT errors can run to pages."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    line = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", line)
    line = re.sub(r"^Load model from .* failed:", "", line).strip() or type(error).__name__
    return line if len(line) <= limit else line[:limit] + "…"


def _fallback_reason(provider: str) -> str | None:
    """Why running on the CPU would surprise the user, or None when it would not.

    They chose CUDA themselves, or an NVIDIA GPU is there but unusable. On a machine
    without one, Auto means CPU and no notice: the status bar shows the provider.
    """
    if provider == "cuda":
        return FALLBACK_CUDA_CHOSEN
    if provider == "auto" and nvidia_gpu_present():
        return FALLBACK_GPU_UNUSABLE
    return None


def _resolve_providers(provider: str) -> tuple[list[str], str | None]:
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
    return ([CUDA_PROVIDER, CPU_PROVIDER] if cuda_listed else [CPU_PROVIDER]), _fallback_reason(provider)


def _build_session(path: Path, providers: list[str], intra_op_threads: int = 0) -> ort.InferenceSession:
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


_NOT_ONNX = "could not be opened as an ONNX model (not ONNX, truncated or damaged)"


def _create_session(path: Path, providers: list[str]) -> ort.InferenceSession:
    try:
        return _build_session(path, providers)
    except Exception as error:  # noqa: BLE001 - ORT raises several pybind exception types
        raise ModelLoadError(f"{path.name} {_NOT_ONNX}: {first_line(error)}") from None


def _inspect(path: Path) -> dict[str, str]:
    """The file-level checks (convnet_common/onnx_file.py) before ONNX Runtime reads anything; the metadata."""
    try:
        return inspect_model_file(path).metadata
    except DamagedModelFile as error:
        raise ModelLoadError(f"{path.name} {_NOT_ONNX}: {error}") from None
    except ModelFileError as error:
        raise ModelLoadError(f"{path.name} was refused: {error}") from None
    except PermissionError:
        raise ModelLoadError(f"{path.name}: permission denied") from None
    except OSError as error:
        raise ModelLoadError(f"{path.name}: cannot be read ({error.strerror or error})") from None


def load_model(path: str | os.PathLike[str], provider: str = "auto") -> LoadedModel:
    """Open, validate and warm up a model; raise ModelLoadError with a one-line reason.

    The file is checked before ONNX Runtime opens it (external data outside its folder,
    oversized or non-UTF-8 metadata, damaged protobuf). A zero image is then run once:
    it proves the graph executes and gives the real class count and activation-map
    shape even when the output shapes are symbolic. Every message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelLoadError(f"not a model file (it is a folder): {path}")
    if not path.is_file():
        raise ModelLoadError(f"not a model file (not a regular file): {path}")
    providers, fallback = _resolve_providers(provider)
    metadata = _inspect(path)
    session = _create_session(path, providers)
    try:
        return _validate(path, session, metadata, fallback)
    except ModelLoadError as error:
        raise ModelLoadError(f"{path.name}: {error}") from None
    except Exception as error:  # noqa: BLE001 - whatever a stranger's file triggers is still a refusal
        raise ModelLoadError(f"{path.name}: unexpected {type(error).__name__}: {first_line(error)}") from None


def _validate(path: Path, session: ort.InferenceSession, metadata: dict[str, str], fallback: str | None) -> LoadedModel:
    """Check the session against the contract (convnet_common/model_contract.py) and run a test image."""
    try:
        contract = read_contract(metadata, session.get_inputs(), session.get_outputs())
        info = info_from_checked(
            contract.metadata, path=path, file_size=path.stat().st_size, input_size=contract.input_size
        )
        try:
            results = session.run(contract.test_outputs, {contract.input_name: contract.test_batch()})
        except Exception as error:  # noqa: BLE001
            raise ModelLoadError(f"model failed on a test image: {first_line(error)}") from None
        checked = contract.check_test_run(results)
    except ContractError as error:
        raise ModelLoadError(str(error)) from None
    info.labels = checked.labels
    info.has_cam = checked.has_cam
    if not info.has_metadata:
        info.notices.append(NOTICE_NO_METADATA)
    elif not checked.has_cam:
        info.notices.append(NOTICE_NO_CAM)

    if session.get_providers()[0] == CUDA_PROVIDER:
        fallback = None
    if fallback is not None:
        info.notices.append(FALLBACK_NOTICES[fallback])
    return LoadedModel(
        session, info, contract.input_name, contract.probabilities_name, contract.cam_name, contract.fixed_batch,
        fallback,
    )
