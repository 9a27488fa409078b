"""Load a ConvNet Studio ONNX file into ONNX Runtime and check it against the contract.

Which execution provider to ask for is desktop.core.providers; how many images a folder
run takes at once is desktop.core.batch_size; this module is the checks and the session.

Every way a model file can be wrong is turned into a `ModelLoadError` with a one-line
message a user can act on, so neither the app nor the CLI ever shows a traceback for a
bad file. Files without ConvNet Studio metadata still classify (generic class names,
no activation maps) as long as their input is uint8 NHWC RGB with a fixed size.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from convnet_common.batch_size import measure_batch_size
from convnet_common.model_contract import ContractError, read_contract
from convnet_common.model_probe import ModelProbeError, probe_model
from convnet_common.onnx_file import DamagedModelFile, ModelFileError, inspect_model_file
from desktop.core.messages import first_line
from desktop.core.model_metadata import ModelInfo, ModelLoadError, info_from_checked, info_from_metadata
from desktop.core.providers import CPU_PROVIDER, CUDA_PROVIDER, FALLBACK_NOTICES, build_session, resolve_providers

__all__ = [
    "NOTICE_NO_CAM",
    "NOTICE_NO_METADATA",
    "LoadedModel",
    "ModelAnswers",
    "ModelInfo",
    "ModelLoadError",
    "ModelOutputError",
    "info_from_metadata",
    "load_model",
]

# The app then computes approximate maps from forward passes (docs/activation-maps.md).
NOTICE_NO_METADATA = "This model has no ConvNet Studio metadata: generic class names, no exact activation maps."
NOTICE_NO_CAM = "This model has no activation-map output: the app draws approximate maps, computed from forward passes."


@dataclass(frozen=True)
class ModelAnswers:
    """One run's outputs: probabilities [N, C], activation maps [N, h, w, C] or None, unknown scores [N] or None."""

    probabilities: np.ndarray
    cam: np.ndarray | None
    unknown_score: np.ndarray | None


class LoadedModel:
    """An ONNX Runtime session plus the contract details needed to run it.

    `predict` may be called from worker threads: ONNX Runtime sessions are thread-safe.
    A model with an unknown score (`has_unknown_score`) judges images against
    `unknown_threshold`: the user's setting for this file when there is one
    (`set_threshold_override`, kept in the app settings by SHA-256), else the file's own.
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
        unknown_name: str | None = None,
        cam_fine_name: str | None = None,
    ) -> None:
        self.session = session
        # The finer map (LayerCAM at an earlier layer): run only when asked, by `fine_maps`.
        self.cam_fine_name = cam_fine_name if info.has_cam_fine else None
        self.info = info
        self.input_name = input_name
        self.probabilities_name = probabilities_name
        self.cam_name = cam_name if info.has_cam else None
        self.unknown_name = unknown_name if info.unknown is not None else None
        self.threshold_override: float | None = None
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
    def has_unknown_score(self) -> bool:
        return self.unknown_name is not None

    @property
    def unknown_threshold(self) -> float | None:
        """The score above which an image is unknown; None for a model without the score."""
        if self.info.unknown is None:
            return None
        return self.threshold_override if self.threshold_override is not None else self.info.unknown.threshold

    def set_threshold_override(self, value: float | None) -> None:
        """Use the user's threshold instead of the file's (None: the file's); only a finite number counts."""
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TypeError("the threshold must be a number")
        self.threshold_override = float(value) if value is not None and math.isfinite(value) else None

    def is_unknown(self, score: float | None) -> bool | None:
        """The verdict for one finite score: None without a score (or for a model without one)."""
        threshold = self.unknown_threshold
        if score is None or threshold is None:
            return None
        return bool(score > threshold)

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
                self._throughput_session = build_session(self.info.path, [CPU_PROVIDER], intra_op_threads=1)
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
            chosen = measure_batch_size(lambda batch: self._run(session, batch), self.info.input_size)
        with self._throughput_lock:
            self._throughput_batch = chosen
        return chosen

    def predict(self, batch: np.ndarray, *, throughput: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Run a uint8 NHWC batch; return probabilities [N, C] and cam [N, h, w, C] or None.

        `throughput=True` uses the folder-run session (see throughput_session).
        """
        answers = self.predict_all(batch, throughput=throughput)
        return answers.probabilities, answers.cam

    def predict_all(self, batch: np.ndarray, *, throughput: bool = False) -> ModelAnswers:
        """`predict`, with the unknown scores too (None for a model without them)."""
        height, width = self.info.input_size
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (height, width, 3):
            raise ValueError(f"expected a uint8 batch [N, {height}, {width}, 3], got {batch.dtype} {list(batch.shape)}")
        return self._run_all(self.throughput_session() if throughput else self.session, batch)

    def _run(self, session: ort.InferenceSession, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        answers = self._run_all(session, batch)
        return answers.probabilities, answers.cam

    def _run_all(self, session: ort.InferenceSession, batch: np.ndarray) -> ModelAnswers:
        step = self.fixed_batch or max(len(batch), 1)
        outputs = [self.probabilities_name] + ([self.cam_name] if self.cam_name else [])
        outputs += [self.unknown_name] if self.unknown_name else []
        probabilities: list[np.ndarray] = []
        cams: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        for start in range(0, len(batch), step):
            chunk = np.ascontiguousarray(batch[start : start + step])
            results = session.run(outputs, {self.input_name: chunk})
            probs = np.asarray(results[0], dtype=np.float32)
            cam = np.asarray(results[1], dtype=np.float32) if self.cam_name else None
            score = np.asarray(results[-1], dtype=np.float32) if self.unknown_name else None
            self._check_shapes(probs, cam, len(chunk))
            if score is not None and score.shape != (len(chunk),):
                raise ModelOutputError(
                    f"the model gave unknown scores of shape {list(score.shape)} for {len(chunk)} images"
                )
            probabilities.append(probs)
            if cam is not None:
                cams.append(cam)
            if score is not None:
                scores.append(score)
        probs = np.concatenate(probabilities) if probabilities else np.zeros((0, len(self.info.labels)), np.float32)
        cam = np.concatenate(cams) if cams else None
        score = np.concatenate(scores) if scores else (np.zeros(0, np.float32) if self.unknown_name else None)
        return ModelAnswers(probs, cam, score)

    def fine_maps(self, batch: np.ndarray) -> np.ndarray:
        """The `cam_fine` maps [N, h2, w2, C] for a uint8 batch; only for a model that has them.

        Run on demand (the viewer's map choice), not with every prediction: folder runs never
        need it, and it costs a backward pass per class.
        """
        if self.cam_fine_name is None:
            raise ValueError("this model has no finer activation map (cam_fine)")
        height, width = self.info.input_size
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (height, width, 3):
            raise ValueError(f"expected a uint8 batch [N, {height}, {width}, 3], got {batch.dtype} {list(batch.shape)}")
        step = self.fixed_batch or max(len(batch), 1)
        maps = []
        for start in range(0, len(batch), step):
            chunk = np.ascontiguousarray(batch[start : start + step])
            fine = np.asarray(self.session.run([self.cam_fine_name], {self.input_name: chunk})[0], dtype=np.float32)
            classes = len(self.info.labels)
            if fine.ndim != 4 or fine.shape[0] != len(chunk) or fine.shape[3] != classes or min(fine.shape[1:3]) < 1:
                raise ModelOutputError(
                    f"the model gave a finer activation map of shape {list(fine.shape)} for {len(chunk)} images"
                )
            maps.append(fine)
        return np.concatenate(maps) if maps else np.zeros((0, 1, 1, len(self.info.labels)), np.float32)

    def _check_shapes(self, probs: np.ndarray, cam: np.ndarray | None, rows: int) -> None:
        """Raise ModelOutputError unless the run gave one [C] row and one [h, w, C] map per image.

        The load checked this on black images; a graph can still answer differently for
        other pixels or sizes, and a wrong shape must fail the images, not the overlay.
        """
        classes = len(self.info.labels)
        if probs.shape != (rows, classes):
            raise ModelOutputError(
                f"the model gave probabilities of shape {list(probs.shape)} for {rows} images; expected {[rows, classes]}"
            )
        if cam is not None and (
            cam.ndim != 4 or cam.shape[0] != rows or cam.shape[3] != classes or min(cam.shape[1:3]) < 1
        ):
            raise ModelOutputError(f"the model gave an activation map of shape {list(cam.shape)} for {rows} images")


class ModelOutputError(RuntimeError):
    """A run's outputs do not have the shapes the contract requires; the images get this error."""


_NOT_ONNX = "could not be opened as an ONNX model (not ONNX, truncated or damaged)"


def _create_session(path: Path, providers: list[str]) -> ort.InferenceSession:
    try:
        return build_session(path, providers)
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


def load_model(path: str | os.PathLike[str], provider: str = "auto", batch_sizes: Sequence[int] = ()) -> LoadedModel:
    """Open, validate and warm up a model; raise ModelLoadError with a one-line reason.

    The file is checked before ONNX Runtime opens it (external data outside its folder,
    oversized or non-UTF-8 metadata, damaged protobuf). A file not seen before then runs
    first in a guarded child process (convnet_common/model_probe.py) at every batch size
    the app will run, and `batch_sizes` (a size the user chose), so a graph that explodes
    only when run is refused instead of taking the machine. Here, a zero image is then run once:
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
    providers, fallback = resolve_providers(provider)
    metadata = _inspect(path)
    try:
        probe_model(path, batch_sizes, measure_throughput=True)
    except ModelProbeError as error:
        raise ModelLoadError(str(error)) from None
    except OSError as error:
        raise ModelLoadError(f"{path.name}: cannot be read ({error.strerror or error})") from None
    session = _create_session(path, providers)
    try:
        return _validate(path, session, metadata, fallback)
    except ModelLoadError as error:
        raise ModelLoadError(f"{path.name}: {error}") from None
    except Exception as error:  # noqa: BLE001 - whatever a stranger's file triggers is still a refusal
        raise ModelLoadError(f"{path.name}: unexpected {type(error).__name__}: {first_line(error)}") from None


def file_sha256(path: Path) -> str:
    """The file's SHA-256 (hex): what a per-model setting is keyed by, so it follows the file
    when it is moved or renamed, and a retrained file at the same path does not inherit it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _validate(path: Path, session: ort.InferenceSession, metadata: dict[str, str], fallback: str | None) -> LoadedModel:
    """Check the session against the contract (convnet_common/model_contract.py) and run a test image."""
    try:
        contract = read_contract(metadata, session.get_inputs(), session.get_outputs())
        info = info_from_checked(
            contract.metadata, path=path, file_size=path.stat().st_size, input_size=contract.input_size
        )
        for size in contract.test_batch_sizes:  # 1 and 2 when the batch is dynamic: one-row graphs are caught
            try:
                results = session.run(contract.test_outputs, {contract.input_name: contract.test_batch(size)})
            except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own types; any failure refuses the model
                raise ModelLoadError(f"model failed on a test image: {first_line(error)}") from None
            checked = contract.check_test_run(results, batch_size=size)
    except ContractError as error:
        raise ModelLoadError(str(error)) from None
    info.labels = checked.labels
    info.has_cam = checked.has_cam
    info.has_cam_fine = checked.has_cam_fine
    if contract.unknown_name is not None:
        info.unknown = contract.metadata.unknown
        info.sha256 = file_sha256(path)
    if not info.has_metadata:
        info.notices.append(NOTICE_NO_METADATA)
    elif not checked.has_cam:
        info.notices.append(NOTICE_NO_CAM)

    if session.get_providers()[0] == CUDA_PROVIDER:
        fallback = None
    if fallback is not None:
        info.notices.append(FALLBACK_NOTICES[fallback])
    return LoadedModel(
        session,
        info,
        contract.input_name,
        contract.probabilities_name,
        contract.cam_name,
        contract.fixed_batch,
        fallback,
        contract.unknown_name,
        contract.cam_fine_name,
    )
