"""What `convnet-train evaluate` scores: a training run's Keras checkpoint or an exported .onnx file.

Both become a `LoadedModel` whose predict function takes uint8 NHWC batches, so the
scoring code does not care which it got. An .onnx file may come from anyone: it gets the
same file-level checks as the app (convnet_common/onnx_file.py) before ONNX Runtime opens it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convnet_common import model_format as fmt
from convnet_common.onnx_file import DamagedModelFile, ModelFileError, inspect_model_file
from training.data import DatasetError

PredictFn = Callable[[np.ndarray], np.ndarray]  # uint8 NHWC batch -> (N, classes) probabilities


class EvaluationError(DatasetError):
    """The model or the data cannot be evaluated; the message says what to fix."""


@dataclass
class LoadedModel:
    predict: PredictFn
    labels: list[str]
    image_size: tuple[int, int]  # height, width
    history_csv: Path | None
    default_report_dir: Path
    batch_size: int | None = None  # a fixed batch size the model insists on


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


def onnx_predict_fn(session) -> PredictFn:
    names = [output.name for output in session.get_outputs()]
    if fmt.PROBABILITIES_OUTPUT in names:
        output = fmt.PROBABILITIES_OUTPUT
    else:
        two_d = [o.name for o in session.get_outputs() if len(o.shape or []) == 2]
        if len(two_d) != 1:
            raise EvaluationError(f"the model has no '{fmt.PROBABILITIES_OUTPUT}' output (outputs: {', '.join(names)})")
        output = two_d[0]
    input_name = session.get_inputs()[0].name

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(session.run([output], {input_name: images})[0])

    return predict


def _metadata_json(path: Path, metadata, key: str, expected: type, what: str):  # noqa: ANN001, ANN202
    try:
        return fmt.metadata_json(metadata, key, expected, what)
    except fmt.MetadataError as error:
        raise EvaluationError(f"{path}: {error}") from None


def _load_onnx(path: Path) -> LoadedModel:
    import onnxruntime as ort

    # The same file-level checks as the app, before ONNX Runtime reads anything: a model
    # to evaluate may come from anyone (external data outside its folder, huge metadata).
    try:
        metadata = inspect_model_file(path).metadata
        fmt.check_metadata_size(metadata)
    except DamagedModelFile as error:
        raise EvaluationError(f"{path}: not a loadable ONNX model (not ONNX, truncated or damaged: {error})") from None
    except (ModelFileError, fmt.MetadataError) as error:
        raise EvaluationError(f"{path}: refused: {error}") from None
    except OSError as error:
        raise EvaluationError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own exception types
        raise EvaluationError(f"{path}: not a loadable ONNX model ({str(error).splitlines()[0]})") from None
    model_input = session.get_inputs()[0]
    shape = list(model_input.shape)
    if model_input.type != "tensor(uint8)" or len(shape) != 4 or shape[3] != 3:
        raise EvaluationError(
            f"{path}: model input must be uint8 NHWC RGB [N, height, width, 3]; this file's input is "
            f"{model_input.type} {shape}"
        )
    if isinstance(shape[1], int) and isinstance(shape[2], int):
        size = (shape[1], shape[2])
    elif fmt.KEY_INPUT_SIZE in metadata:
        declared = _metadata_json(path, metadata, fmt.KEY_INPUT_SIZE, list, "[height, width]")
        if len(declared) != 2 or not all(isinstance(v, int) and 0 < v <= fmt.MAX_INPUT_SIDE for v in declared):
            raise EvaluationError(f"{path}: metadata 'input_size' must be [height, width], got {declared!r:.80}")
        size = (declared[0], declared[1])
    else:
        raise EvaluationError(f"{path}: the input height and width are not fixed numbers ({shape})")
    predict = onnx_predict_fn(session)
    if fmt.KEY_LABELS in metadata:
        labels = _metadata_json(path, metadata, fmt.KEY_LABELS, list, "a JSON list of class names")
    else:  # a plain ONNX file: generic names, as the app gives them
        probe = predict(np.zeros((shape[0] if isinstance(shape[0], int) else 1, *size, 3), np.uint8))
        labels = [f"class {i}" for i in range(probe.shape[1])]
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise EvaluationError(f"{path}: metadata 'labels' must be a non-empty JSON list of strings")
    fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return LoadedModel(predict, labels, size, None, Path.cwd() / f"report-{path.stem}", fixed_batch)


def _load_run(run_dir: Path) -> LoadedModel:
    import keras

    import training.layers  # noqa: F401  registers the in-graph preprocessing layers
    from training.trainer import CHECKPOINT_NAME

    checkpoint, result_json = run_dir / CHECKPOINT_NAME, run_dir / "result.json"
    if not checkpoint.is_file() or not result_json.is_file():
        raise EvaluationError(
            f"{run_dir} is not a finished training run (needs {CHECKPOINT_NAME} and result.json); "
            f"pass a run folder or an exported .onnx file"
        )
    model = keras.models.load_model(checkpoint, safe_mode=True)
    result = json.loads(result_json.read_text(encoding="utf-8"))
    size = int(result["image_size"])
    history = run_dir / "history.csv"
    return LoadedModel(
        keras_predict_fn(model), list(result["labels"]), (size, size), history if history.is_file() else None,
        run_dir / "report",
    )


def load_model(source: str | os.PathLike[str]) -> LoadedModel:
    source = Path(source)
    if source.is_dir():
        return _load_run(source)
    if source.is_file() and source.suffix.lower() == ".onnx":
        return _load_onnx(source)
    if not source.exists():
        raise EvaluationError(f"{source} not found: pass a training run folder or an exported .onnx file")
    raise EvaluationError(f"{source} is neither a training run folder nor an .onnx file")
