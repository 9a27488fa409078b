"""The Adopt dialog's live prediction: the original graph run on the current image, preprocessed in numpy.

`convnet-train adopt --inspect --preview-onnx TMP` writes the source's graph as plain ONNX
with the float input it needs. Before the user saves, the dialog shows what that graph
answers for the current image under the settings on screen, so a wrong mean/std or
channel order is visible at once (a confident right answer, or a flat or wrong one). The
preprocessing is the same arithmetic the adopted file will have in its graph
(training/adopt/compose.py, checked against training/adopt/check.py): fit to H x W by the
resize mode (convnet_common.resize_mode), x = (pixel/255 - mean)/std per RGB channel,
then the channel order, grey by luma for one-channel inputs, the layout, float16 where the
input is float16. Logits get a softmax.

The graph comes from a stranger, so its first run is the app's guarded one
(model_probe.probe_float_input: a child with memory and time limits); the session is then
kept while the file (path, size, modification time) and the input shape are unchanged.
No Qt here and no onnx package: numpy and ONNX Runtime only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from convnet_common.foreign_input import softmax, to_float_input
from convnet_common.imaging import fit_to_model
from convnet_common.model_probe import ModelProbeError, probe_float_input
from convnet_common.onnx_file import ModelFileError, inspect_model_file
from convnet_common.resize_mode import ResizeMode
from desktop.core.adoption import AdoptChoices

PREVIEW_TOP_K = 5


class PreviewError(Exception):
    """The preview could not run; the message is one line for the dialog."""


@dataclass(frozen=True)
class PreviewResult:
    top_k: list[tuple[str, float]]
    probabilities: np.ndarray
    model_input: np.ndarray  # the fitted uint8 RGB picture, for showing what the model sees


def preprocess(image: np.ndarray, choices: AdoptChoices, dtype: str = "float32", channels: int = 3) -> np.ndarray:
    """One RGB image as the original graph's input batch of one (see the module docstring)."""
    height, width = choices.input_size
    fitted = fit_to_model(image, height, width, ResizeMode(choices.resize, choices.crop_fraction))
    return to_float_input(
        fitted[None], choices.layout, choices.mean, choices.std, choices.channel_order, dtype, channels
    )


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


class AdoptPreview:
    """Runs the preview graph; one cached session, safe to call from one worker thread at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: ort.InferenceSession | None = None
        self._key: tuple | None = None
        self.sessions_opened = 0  # for tests: the cache holds while the file is unchanged

    def _open(self, path: Path, shape: list[int]) -> ort.InferenceSession:
        try:
            key = (*_file_key(path), tuple(shape))
        except OSError as error:
            raise PreviewError(f"the preview model cannot be read: {error.strerror or error}") from None
        if self._session is not None and self._key == key:
            return self._session
        try:
            inspect_model_file(path)
            probe_float_input(path, shape)
            options = ort.SessionOptions()
            options.log_severity_level = 3
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except (ModelFileError, ModelProbeError, OSError) as error:
            raise PreviewError(str(error)) from None
        except Exception as error:  # noqa: BLE001 - ONNX Runtime's own error types
            raise PreviewError(f"ONNX Runtime cannot open the model: {' '.join(str(error).split())[:300]}") from None
        self._session, self._key = session, key
        self.sessions_opened += 1
        return session

    def predict(
        self,
        preview_onnx: Path,
        image: np.ndarray,
        choices: AdoptChoices,
        labels: list[str] | None = None,
        top_k: int = PREVIEW_TOP_K,
    ) -> PreviewResult:
        """The top classes for `image` under `choices`, or PreviewError with one line."""
        problems = choices.problems()
        if problems:
            raise PreviewError(problems[0])
        with self._lock:
            channels = 3
            height, width = choices.input_size
            shape = [1, 3, height, width] if choices.layout == "nchw" else [1, height, width, 3]
            session = self._open(Path(preview_onnx), shape)
            node = session.get_inputs()[0]
            dims = list(node.shape or [])
            if len(dims) == 4:
                channel_dim = dims[1] if choices.layout == "nchw" else dims[3]
                channels = 1 if channel_dim == 1 else 3
            if channels == 1:  # the guarded run used 3 channels: run the real shape guarded too
                shape[1 if choices.layout == "nchw" else 3] = 1
                session = self._open(Path(preview_onnx), shape)
            dtype = "float16" if node.type == "tensor(float16)" else "float32"
            batch = preprocess(image, choices, dtype, channels)
            try:
                scores = np.asarray(session.run(None, {node.name: batch})[0], dtype=np.float64)
            except Exception as error:  # noqa: BLE001 - ONNX Runtime's own error types
                raise PreviewError(
                    f"the model cannot run with these settings: {' '.join(str(error).split())[:300]}"
                ) from None
        scores = scores.reshape(scores.shape[0], -1)[0] if scores.ndim >= 2 else scores.reshape(-1)
        if not np.all(np.isfinite(scores)):
            raise PreviewError("the model's answer is not finite numbers (NaN or infinity)")
        probabilities = softmax(scores) if choices.output == "logits" else scores
        names = list(labels or [])
        if len(names) != len(probabilities):
            names = [f"class {i}" for i in range(len(probabilities))]
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        height, width = choices.input_size
        fitted = fit_to_model(image, height, width, ResizeMode(choices.resize, choices.crop_fraction))
        return PreviewResult([(names[i], float(probabilities[i])) for i in order], probabilities, fitted)
