"""load_model: the contract checks and their messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx_factory
import pytest
from onnx import TensorProto

from convnet_common.model_format import MAX_METADATA_VALUE_BYTES
from desktop.core.model import (
    NOTICE_NO_METADATA,
    LoadedModel,
    ModelLoadError,
    load_model,
)
from desktop.core.providers import NOTICE_CUDA_FALLBACK


def test_full_model_reads_metadata(colour_model: Path) -> None:
    model = load_model(colour_model, provider="cpu")
    info = model.info
    assert info.labels == ["red", "green", "blue"]
    assert info.input_size == (16, 16)
    assert info.has_metadata and info.has_cam
    assert info.backbone == "factory-mean-colour"
    assert info.training["test_accuracy"] == 0.97
    assert info.held_out_accuracy == 0.97
    assert info.precision == "fp32"
    assert info.file_size == colour_model.stat().st_size
    assert info.notices == []
    assert model.provider_in_use == "CPUExecutionProvider"


def test_predict_shapes(colour_model: Path) -> None:
    model = load_model(colour_model, provider="cpu")
    probs, cam = model.predict(np.zeros((3, 16, 16, 3), np.uint8))
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert cam is not None and cam.shape == (3, 4, 4, 3)
    with pytest.raises(ValueError, match="uint8 batch"):
        model.predict(np.zeros((1, 8, 8, 3), np.uint8))


def test_no_metadata_model_gets_generic_names_and_no_cam(plain_model: Path) -> None:
    model = load_model(plain_model, provider="cpu")
    assert model.info.labels == ["class 0", "class 1", "class 2"]
    assert not model.info.has_metadata
    assert not model.info.has_cam  # even though the graph has a `cam` output
    assert NOTICE_NO_METADATA in model.info.notices
    probs, cam = model.predict(np.zeros((1, 16, 16, 3), np.uint8))
    assert cam is None and probs.shape == (1, 3)


def test_single_2d_output_is_used_without_metadata(models_dir: Path) -> None:
    path = onnx_factory.save_model(
        models_dir / "other-name.onnx", metadata=None, probabilities_name="scores", with_cam=False
    )
    model = load_model(path, provider="cpu")
    assert model.probabilities_name == "scores"
    assert model.info.labels == ["class 0", "class 1", "class 2"]


def test_metadata_model_must_name_probabilities(models_dir: Path) -> None:
    path = onnx_factory.save_model(models_dir / "renamed.onnx", probabilities_name="scores")
    with pytest.raises(ModelLoadError, match="no 'probabilities' output.*scores"):
        load_model(path, provider="cpu")


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (
            {"input_dtype": TensorProto.FLOAT},
            r"model input must be uint8 NHWC RGB .*this file's input is float32 \[N, 16, 16, 3\]",
        ),
        ({"layout": "NCHW"}, r"this file's input is uint8 \[N, 3, 16, 16\]"),
        ({"dynamic_spatial": True}, r"fixed height and width; this file's input is uint8 \[N, H, W, 3\]"),
    ],
)
def test_wrong_input_contract_is_refused(models_dir: Path, variant: dict, expected: str) -> None:
    path = onnx_factory.save_model(models_dir / f"bad-input-{len(variant)}-{sorted(variant)[0]}.onnx", **variant)
    with pytest.raises(ModelLoadError, match=expected):
        load_model(path, provider="cpu")


def test_float_input_without_metadata_is_refused_too(models_dir: Path) -> None:
    path = onnx_factory.save_model(models_dir / "float-plain.onnx", metadata=None, input_dtype=TensorProto.FLOAT)
    with pytest.raises(ModelLoadError, match="float32"):
        load_model(path, provider="cpu")


def _with_metadata(models_dir: Path, name: str, **changes: str) -> Path:
    metadata = onnx_factory.full_metadata(onnx_factory.COLOUR_LABELS, 16)
    metadata.update(changes)
    return onnx_factory.save_model(models_dir / name, metadata=metadata)


def test_label_count_mismatch(models_dir: Path) -> None:
    path = _with_metadata(models_dir, "two-labels.onnx", labels=json.dumps(["a", "b"]))
    with pytest.raises(ModelLoadError, match="lists 2 labels but 'probabilities' has 3 classes"):
        load_model(path, provider="cpu")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("labels", "[red, green", "'labels' is not valid JSON"),
        ("labels", json.dumps({"a": 1}), "'labels' must be a JSON list"),
        ("labels", json.dumps([1, 2, 3]), "non-empty list of strings"),
        ("training", "{oops", "'training' is not valid JSON"),
        ("input_size", json.dumps([32, 32]), r"'input_size' is \[32, 32\] but the input tensor is \[16, 16\]"),
        ("convnet_studio.format_version", "2", "format version '2' is not supported"),
        ("backbone", "x" * (MAX_METADATA_VALUE_BYTES + 1), "above the 1,000,000-byte limit"),
    ],
)
def test_bad_metadata_is_refused(models_dir: Path, key: str, value: str, expected: str) -> None:
    path = _with_metadata(models_dir, f"bad-{key}-{abs(hash(value)) % 10_000}.onnx", **{key: value})
    with pytest.raises(ModelLoadError, match=expected):
        load_model(path, provider="cpu")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model file not found"):
        load_model(tmp_path / "absent.onnx")


def test_folder_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="folder"):
        load_model(tmp_path)


def test_text_file_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelLoadError, match="could not be opened as an ONNX model") as caught:
        load_model(path)
    assert "\n" not in str(caught.value)


def test_truncated_file(colour_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.onnx"
    data = colour_model.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="not ONNX, truncated or damaged"):
        load_model(path)


def test_unknown_provider(colour_model: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown provider 'tpu'"):
        load_model(colour_model, provider="tpu")


def test_cuda_request_reports_what_the_session_uses(colour_model: Path) -> None:
    model = load_model(colour_model, provider="cuda")
    assert isinstance(model, LoadedModel)
    if model.provider_in_use == "CUDAExecutionProvider":
        assert NOTICE_CUDA_FALLBACK not in model.info.notices
    else:
        assert model.provider_in_use == "CPUExecutionProvider"
        assert model.info.notices.count(NOTICE_CUDA_FALLBACK) == 1


def test_cpu_request_never_mentions_cuda(colour_model: Path) -> None:
    model = load_model(colour_model, provider="cpu")
    assert NOTICE_CUDA_FALLBACK not in model.info.notices
