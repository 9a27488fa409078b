"""Fuzz the model-metadata reader and the ONNX file pre-check.

`info_from_metadata` turns a stranger's metadata strings into the ModelInfo the app
shows: whatever the dict holds, the answer is a valid ModelInfo or one ModelLoadError
line. Dicts start from a valid ConvNet Studio set of entries and get keys removed,
replaced and added: random text, JSON of random shapes (NaN, huge integers, deep
nesting, escapes), truncated valid JSON and strings around the size limits. The
augmentation value is also handed to the Augment tab's reader, which uses it next.

`inspect_model_file` walks the protobuf of every model before ONNX Runtime sees it:
over random and mutated ONNX bytes it must answer with facts or ModelFileError.
Inputs that once failed are replayed from regressions/ on every run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import fuzz_settings, keep_failure, regression_files
from hypothesis import given
from hypothesis import strategies as st

from convnet_common import model_format as fmt
from convnet_common.onnx_file import ModelFileError, inspect_model_file
from desktop.core.augmentation import params_from_metadata
from desktop.core.model import ModelLoadError, load_model
from desktop.core.model_metadata import ModelInfo, info_from_metadata

INPUT_SIZE = (16, 16)
MODEL_PATH = Path("fuzz-model.onnx")
CONTRACT_KEYS = [
    fmt.KEY_FORMAT_VERSION,
    fmt.KEY_LABELS,
    fmt.KEY_INPUT_SIZE,
    fmt.KEY_BACKBONE,
    fmt.KEY_TRAINING,
    fmt.KEY_PREPROCESSING,
    fmt.KEY_AUGMENTATION,
    fmt.KEY_PRECISION,
    fmt.KEY_EXPORTED_AT,
    fmt.KEY_CAM_LAYER,
]


def valid_metadata() -> dict[str, str]:
    return {
        fmt.KEY_FORMAT_VERSION: fmt.FORMAT_VERSION,
        fmt.KEY_LABELS: json.dumps(["red", "green", "blue"]),
        fmt.KEY_INPUT_SIZE: json.dumps(list(INPUT_SIZE)),
        fmt.KEY_BACKBONE: "mobilenet_v2",
        fmt.KEY_TRAINING: json.dumps({"dataset": "pets", "image_count": 300, "val_accuracy": 0.9, "epochs": 3}),
        fmt.KEY_PREPROCESSING: "scale to [-1, 1]",
        fmt.KEY_AUGMENTATION: json.dumps({"rotation_degrees": 10.0, "zoom": 0.1, "horizontal_flip": True}),
        fmt.KEY_PRECISION: "fp32",
        fmt.KEY_EXPORTED_AT: "2026-01-01T00:00:00+00:00",
        fmt.KEY_CAM_LAYER: "Conv_1",
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)


@st.composite
def truncated_json(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(list(valid_metadata().values())))
    return text[: draw(st.integers(0, max(len(text) - 1, 0)))]


def _near_limit(draw: st.DrawFn) -> str:
    size = draw(
        st.sampled_from(
            [fmt.MAX_METADATA_VALUE_BYTES - 1, fmt.MAX_METADATA_VALUE_BYTES, fmt.MAX_METADATA_VALUE_BYTES + 1]
        )
    )
    filler = draw(st.sampled_from(["x", "é"]))
    return filler * (size // len(filler.encode()))


@st.composite
def metadata_values(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["text", "json", "json", "labels", "truncated", "nested", "escape", "huge"]))
    if kind == "text":
        return draw(st.text(max_size=60))
    if kind == "json":
        return json.dumps(draw(json_values))
    if kind == "labels":
        return json.dumps(draw(st.lists(st.text(max_size=8) | st.integers(), max_size=5)))
    if kind == "truncated":
        return draw(truncated_json())
    if kind == "nested":
        depth = draw(st.sampled_from([10, 63, 64, 65, 1_000, 50_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return opener * depth + "1" + closer * depth
    if kind == "escape":
        return draw(
            st.sampled_from(
                [
                    '["\\ud800"]',
                    '{"\\udfff": 1}',
                    '["\\u0000"]',
                    "[1e999]",
                    "[NaN]",
                    "[" + "9" * 30 + "]",
                    '{"zoom": 1' + "0" * 400 + "}",
                ]
            )
        )
    return _near_limit(draw)


@st.composite
def metadata_dicts(draw: st.DrawFn) -> dict[str, str]:
    metadata = valid_metadata() if draw(st.booleans()) or draw(st.booleans()) else {}
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "delete" and metadata:
            metadata.pop(draw(st.sampled_from(sorted(metadata))))
        elif action == "replace":
            metadata[draw(st.sampled_from(CONTRACT_KEYS))] = draw(metadata_values())
        else:
            metadata[draw(st.text(max_size=20))] = draw(metadata_values())
    return metadata


def check_info(metadata: dict[str, str]) -> None:
    """The property: a valid ModelInfo (that the Augment tab can read) or one ModelLoadError line."""
    try:
        try:
            info = info_from_metadata(metadata, path=MODEL_PATH, file_size=1234, input_size=INPUT_SIZE)
        except ModelLoadError as error:
            message = str(error)
            assert message and "\n" not in message and len(message) < 400, message
            return
        _assert_valid(info, metadata)
        params, note = params_from_metadata(info.augmentation)
        assert isinstance(note, str)
    except Exception:
        kept = keep_failure("metadata", {"input_size": list(INPUT_SIZE), "metadata": metadata})
        if kept is not None:
            print(f"input kept in {kept}")
        raise


def _assert_valid(info: ModelInfo, metadata: dict[str, str]) -> None:
    assert info.has_metadata == (fmt.KEY_FORMAT_VERSION in metadata)
    assert isinstance(info.labels, list) and all(isinstance(label, str) for label in info.labels)
    assert bool(info.labels) == info.has_metadata
    for label in info.labels:
        label.encode("utf-8")  # text the window, a CSV and a folder name can all take
    assert info.input_size == INPUT_SIZE and info.path == MODEL_PATH
    assert isinstance(info.training, dict)
    assert info.augmentation is None or isinstance(info.augmentation, (dict, list))
    for text in (info.backbone, info.preprocessing, info.precision, info.exported_at, info.cam_layer):
        assert isinstance(text, str)
    accuracy = info.held_out_accuracy
    assert accuracy is None or (isinstance(accuracy, float) and math.isfinite(accuracy) and 0.0 <= accuracy <= 1.0)
    json.dumps(info.training)  # plain data: it is shown and may be written out again


def test_valid_metadata_reads() -> None:
    info = info_from_metadata(valid_metadata(), path=MODEL_PATH, file_size=1, input_size=INPUT_SIZE)
    assert info.labels == ["red", "green", "blue"] and info.held_out_accuracy == 0.9


@fuzz_settings(300)
@given(metadata=metadata_dicts())
def test_metadata_reader(metadata: dict[str, str]) -> None:
    check_info(metadata)


@pytest.mark.parametrize("path", regression_files("metadata", ".json"), ids=lambda p: p.name)
def test_kept_metadata_regressions(path: Path) -> None:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert case["input_size"] == list(INPUT_SIZE)
    check_info(case["metadata"])
    if case.get("refused"):
        with pytest.raises(ModelLoadError):
            info_from_metadata(case["metadata"], path=MODEL_PATH, file_size=1, input_size=INPUT_SIZE)


# --- the file-level pre-check ----------------------------------------------------------


def _onnx_seed() -> bytes:
    """The desktop tests' colour model (tests/desktop/onnx_factory.py), serialised."""
    import importlib.util

    factory_path = Path(__file__).resolve().parents[1] / "desktop" / "onnx_factory.py"
    spec = importlib.util.spec_from_file_location("fuzz_onnx_factory", factory_path)
    assert spec is not None and spec.loader is not None
    factory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(factory)
    return factory.build_model().SerializeToString()


ONNX_SEED = _onnx_seed()


@st.composite
def mutated_onnx(draw: st.DrawFn) -> bytes:
    data = bytearray(ONNX_SEED)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "byte"]))
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            data = data[:position]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        else:
            data[position] = draw(st.sampled_from([0x00, 0x08, 0x0A, 0x12, 0x7F, 0x80, 0xFF]))
    return bytes(data)


def check_file(data: bytes, folder: Path) -> None:
    """The property for the pre-check: facts, or ModelFileError with one line; never anything else."""
    path = folder / "fuzz.onnx"
    path.write_bytes(data)
    try:
        try:
            facts = inspect_model_file(path)
        except ModelFileError as error:
            assert "\n" not in str(error) and str(error), str(error)
            return
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in facts.metadata.items())
        for external in facts.external_files:
            assert folder.resolve() in external.resolve().parents
    except Exception:
        kept = keep_failure("model_files", data, ".onnx")
        if kept is not None:
            print(f"input kept in {kept}")
        raise


@fuzz_settings(150)
@given(data=st.binary(max_size=512) | mutated_onnx())
def test_model_file_precheck(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    check_file(data, tmp_path_factory.mktemp("fuzz-onnx", numbered=True))


@pytest.mark.parametrize("path", regression_files("model_files", ".onnx"), ids=lambda p: p.name)
def test_kept_model_file_regressions(path: Path, tmp_path: Path) -> None:
    """Replayed through the pre-check and the whole loader: refused in one line, never a crash."""
    check_file(path.read_bytes(), tmp_path)
    with pytest.raises(ModelLoadError) as caught:
        load_model(path, provider="cpu")
    assert "\n" not in str(caught.value) and path.name in str(caught.value)


def test_regression_folders_are_not_empty() -> None:
    assert regression_files("metadata", ".json"), "tests/fuzz/regressions/metadata holds no inputs"
    assert regression_files("model_files", ".onnx"), "tests/fuzz/regressions/model_files holds no inputs"
