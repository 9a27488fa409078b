"""What `convnet-train evaluate` scores: a training run's Keras checkpoint or an exported .onnx file.

Both become a `ModelToScore` whose predict function takes uint8 NHWC batches, so the
scoring code does not care which it got. (The names differ from the app's `LoadedModel`
and `load_model` on purpose: this is a predict function and a report folder, not a session.)

An .onnx file may come from anyone, and it is read by the same reader as the app's:
the file-level checks (convnet_common/onnx_file.py) before ONNX Runtime opens it, then
the contract (convnet_common/model_contract.py) and one test image. So a file evaluate
scores is a file the app classifies the same way, and one the app refuses is refused here
with the same reason: no `convnet_studio.format_version` means generic class names
(`class 0`, …) even if other metadata keys are there; height and width must be fixed in
the graph; a format version other than 1, a label count that is not the class count, or
an `input_size` that is not the input tensor's is refused.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convnet_common.model_contract import ContractError, ModelContract, read_contract
from convnet_common.model_probe import ModelProbeError, probe_model
from convnet_common.onnx_file import DamagedModelFile, ModelFileError, inspect_model_file
from training.data import DatasetError

PredictFn = Callable[[np.ndarray], np.ndarray]  # uint8 NHWC batch -> (N, classes) probabilities


class EvaluationError(DatasetError):
    """The model or the data cannot be evaluated; the message says what to fix."""


@dataclass
class ModelToScore:
    """A model as evaluate needs it: uint8 NHWC batch -> probabilities, class names, where reports go."""

    predict: PredictFn
    labels: list[str]
    image_size: tuple[int, int]  # height, width
    history_csv: Path | None
    default_report_dir: Path
    batch_size: int | None = None  # a fixed batch size the model insists on
    temperature: float | None = None  # its calibration (training.calibration), if any
    temperature_source: str | None = None
    calibrated: bool = False  # predict already applies the temperature (an exported file)


def keras_predict_fn(model) -> PredictFn:
    """A Keras classifier (float32 RGB 0..255 in, softmax out) as a uint8-batch predict function."""

    def predict(images: np.ndarray) -> np.ndarray:
        outputs = model.predict_on_batch(images.astype(np.float32))
        if isinstance(outputs, dict):  # a multi-output training graph: the main classifier
            outputs = outputs.get("probabilities", next(iter(outputs.values())))
        elif isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return np.asarray(outputs)

    return predict


def onnx_predict_fn(session, contract: ModelContract) -> PredictFn:
    """The contract's probabilities output of an ONNX Runtime session as a uint8-batch predict function."""

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(session.run([contract.probabilities_name], {contract.input_name: images})[0])

    return predict


def _first_line(error: BaseException) -> str:
    """ONNX Runtime's messages start with a code and can run to pages: the first line, without the code."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", line)[:200]


def _load_onnx(path: Path, batch_size: int) -> ModelToScore:
    import onnxruntime as ort

    # The same file-level checks as the app, before ONNX Runtime reads anything: a model
    # to evaluate may come from anyone (external data outside its folder, huge metadata).
    try:
        metadata = inspect_model_file(path).metadata
    except DamagedModelFile as error:
        raise EvaluationError(f"{path}: not a loadable ONNX model (not ONNX, truncated or damaged: {error})") from None
    except ModelFileError as error:
        raise EvaluationError(f"{path}: refused: {error}") from None
    except OSError as error:
        raise EvaluationError(f"{path}: cannot be read ({error.strerror or error})") from None
    # Then its first run in a guarded child (convnet_common/model_probe.py) at the batch size
    # evaluate runs: a graph whose sizes explode only when run is refused, not run here.
    try:
        probe_model(path, [batch_size])
    except ModelProbeError as error:
        raise EvaluationError(str(error)) from None
    except OSError as error:
        raise EvaluationError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise EvaluationError(f"{path}: not a loadable ONNX model ({_first_line(error)})") from None
    # Then the contract, read by the app's reader, and one black test image, as the app does.
    try:
        contract = read_contract(metadata, session.get_inputs(), session.get_outputs())
        # At every batch size the app tries (1 and 2 when the batch is dynamic), with every
        # answer checked, so evaluate refuses the same hostile models the app does.
        for size in contract.test_batch_sizes:
            try:
                results = session.run(contract.test_outputs, {contract.input_name: contract.test_batch(size)})
            except Exception as error:  # noqa: BLE001 - whatever a stranger's file triggers is a refusal
                raise EvaluationError(f"{path}: model failed on a test image: {_first_line(error)}") from None
            labels = contract.check_test_run(results, batch_size=size).labels
    except ContractError as error:
        raise EvaluationError(f"{path}: {error}") from None
    temperature = _file_temperature(metadata) if contract.metadata.has_metadata else None
    return ModelToScore(
        onnx_predict_fn(session, contract),
        labels,
        contract.input_size,
        None,
        Path.cwd() / f"report-{path.stem}",
        contract.fixed_batch,
        temperature,
        "from the model's calibration metadata" if temperature is not None else None,
        temperature is not None,
    )


def _file_temperature(metadata) -> float | None:
    """The temperature the file's graph applies (its `calibration` entry), None when it has
    none or the entry is unusable (then its probabilities are reported as they are)."""
    from convnet_common import model_format as fmt
    from training.calibration import Calibration

    if fmt.KEY_CALIBRATION not in metadata:
        return None
    try:
        return Calibration.from_dict(
            fmt.metadata_json(metadata, fmt.KEY_CALIBRATION, dict, "a JSON object")
        ).temperature
    except (fmt.MetadataError, TypeError, ValueError):
        return None


def _load_run(run_dir: Path) -> ModelToScore:
    from convnet_common.run_layout import RunFolder

    run = RunFolder(run_dir)
    checkpoint, result_json = run.best_checkpoint, run.result
    if not checkpoint.is_file() or not result_json.is_file():
        raise EvaluationError(
            f"{run_dir} is not a finished training run (needs {run.BEST_CHECKPOINT} and {run.RESULT}); "
            f"pass a run folder or an exported .onnx file"
        )
    from training.mixed_precision import load_float32

    model = load_float32(checkpoint)
    result = json.loads(result_json.read_text(encoding="utf-8"))
    size = int(result["image_size"])
    history = run.history
    from training.run_calibration import stored_calibration

    calibration = stored_calibration(result)
    temperature = calibration.temperature if calibration is not None else None
    return ModelToScore(
        keras_predict_fn(model),
        list(result["labels"]),
        (size, size),
        history if history.is_file() else None,
        run.report,
        temperature=temperature,
        temperature_source="from the run's result.json (fitted on its validation split)" if temperature else None,
    )


def load_model_to_score(source: str | os.PathLike[str], batch_size: int = 64) -> ModelToScore:
    """A run folder's checkpoint or an .onnx file, ready to score at `batch_size`; EvaluationError says why not."""
    source = Path(source)
    if source.is_dir():
        return _load_run(source)
    if source.is_file() and source.suffix.lower() == ".onnx":
        return _load_onnx(source, batch_size)
    if not source.exists():
        raise EvaluationError(f"{source} not found: pass a training run folder or an exported .onnx file")
    raise EvaluationError(f"{source} is neither a training run folder nor an .onnx file")
