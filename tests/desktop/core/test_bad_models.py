"""Bad model files: each gets one clear line naming the file, and the loaded model stays.

The models are built here with `onnx` (tests may import it; the app may not). Files
whose external data points outside their folder must be refused before ONNX Runtime
opens them at all: `InferenceSession` is replaced by a tripwire for those tests.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx_factory
import pytest
from onnx import TensorProto, helper, numpy_helper

from convnet_common import model_format as fmt
from desktop.core import model as model_module
from desktop.core.model import ModelLoadError, load_model

WAIT_MS = 10_000


@dataclass(frozen=True)
class BadModel:
    path: Path
    expected: str  # a regular expression the one-line message must match


def _metadata(**changes: str) -> dict[str, str]:
    metadata = onnx_factory.full_metadata(onnx_factory.COLOUR_LABELS, 16)
    metadata.update(changes)
    return metadata


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _rank3_model(path: Path) -> Path:
    """uint8 [N, 16, 48]: a greyscale-strip input of the wrong rank."""
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["pixels"], ["means"], axes=[1], keepdims=0),
            helper.make_node("Softmax", ["means"], ["probabilities"], axis=-1),
        ],
        "rank3",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 16, 48])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 48])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return _save(model, path)


def _with_external_weights(folder: Path, name: str, location: str, data_path: Path | None = None) -> Path:
    """The colour model with its `weights` initializer stored in another file at `location`.

    The bytes are written to `data_path` (default: `location` resolved against `folder`),
    so ONNX Runtime *could* read them if nothing stopped it.
    """
    model = onnx_factory.build_model()
    tensor = next(t for t in model.graph.initializer if t.name == "weights")
    raw = numpy_helper.to_array(tensor).tobytes()
    target = data_path or (folder / location)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
    onnx.external_data_helper.set_external_data(tensor, location=location, offset=0, length=len(raw))
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    return _save(model, folder / name)


def _external_in_constant_node(folder: Path, location: str) -> Path:
    """External data in a Constant node's tensor attribute, not an initializer."""
    model = onnx_factory.build_model()
    weights = next(t for t in model.graph.initializer if t.name == "weights")
    constant = onnx.TensorProto()
    constant.CopyFrom(weights)
    constant.name = "weights_value"
    onnx.external_data_helper.set_external_data(constant, location=location, offset=0, length=36)
    constant.ClearField("raw_data")
    constant.ClearField("float_data")
    constant.data_location = TensorProto.EXTERNAL
    model.graph.initializer.remove(weights)
    model.graph.node.insert(0, helper.make_node("Constant", [], ["weights"], value=constant))
    return _save(model, folder / "constant-node.onnx")


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BadModel]:
    """Every kind of bad model file from issue 6, each with the message it must give."""
    root = tmp_path_factory.mktemp("bad-models")
    folder = root / "models"
    folder.mkdir()
    good = onnx_factory.build_model().SerializeToString()
    secret = root / "secret.bin"
    secret.write_bytes(b"\0" * 36)
    (folder / "notes.onnx").write_text("this is not a model\n")
    (folder / "page.onnx").write_text("<!doctype html><html><body>404</body></html>\n")
    (folder / "empty.onnx").write_bytes(b"")
    (folder / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (folder / "cut-early.onnx").write_bytes(good[:7])
    (folder / "link-out.bin").symlink_to(secret)
    cases = {
        "text": BadModel(folder / "notes.onnx", r"notes\.onnx could not be opened as an ONNX model \(not ONNX"),
        "html": BadModel(folder / "page.onnx", r"page\.onnx could not be opened as an ONNX model"),
        "empty": BadModel(folder / "empty.onnx", r"empty\.onnx could not be opened .*empty \(0 bytes\)"),
        "truncated": BadModel(folder / "truncated.onnx", r"truncated\.onnx could not be opened .*truncated"),
        "cut-early": BadModel(folder / "cut-early.onnx", r"cut-early\.onnx could not be opened"),
        "float-input": BadModel(
            onnx_factory.save_model(folder / "float.onnx", input_dtype=TensorProto.FLOAT),
            r"float\.onnx: model input must be uint8 NHWC RGB .*this file's input is float32 \[N, 16, 16, 3\]",
        ),
        "nchw": BadModel(
            onnx_factory.save_model(folder / "nchw.onnx", layout="NCHW"),
            r"nchw\.onnx: .*this file's input is uint8 \[N, 3, 16, 16\]",
        ),
        "rank-3": BadModel(
            _rank3_model(folder / "rank3.onnx"), r"rank3\.onnx: .*this file's input is uint8 \[N, 16, 48\]"
        ),
        "dynamic-spatial": BadModel(
            onnx_factory.save_model(folder / "dynamic.onnx", dynamic_spatial=True),
            r"dynamic\.onnx: .*fixed height and width; this file's input is uint8 \[N, H, W, 3\]",
        ),
        "label-count": BadModel(
            onnx_factory.save_model(folder / "two-labels.onnx", metadata=_metadata(labels=json.dumps(["a", "b"]))),
            r"two-labels\.onnx: model metadata lists 2 labels but 'probabilities' has 3 classes",
        ),
        "malformed-json": BadModel(
            onnx_factory.save_model(folder / "bad-json.onnx", metadata=_metadata(labels='["red", "green"')),
            r"bad-json\.onnx: model metadata 'labels' is not valid JSON \(.*line 1 column \d+\); expected a JSON list",
        ),
        "deep-json": BadModel(
            onnx_factory.save_model(folder / "deep.onnx", metadata=_metadata(training="[" * 20_000 + "]" * 20_000)),
            r"deep\.onnx: model metadata 'training' is nested too deeply",
        ),
        "huge-entry": BadModel(
            onnx_factory.save_model(
                folder / "huge-entry.onnx", metadata=_metadata(backbone="x" * (fmt.MAX_METADATA_VALUE_BYTES + 1))
            ),
            r"huge-entry\.onnx was refused: .*'backbone' is 1,000,001 bytes, above the 1,000,000-byte limit",
        ),
        "huge-total": BadModel(
            onnx_factory.save_model(
                folder / "huge-total.onnx",
                metadata=_metadata(**{f"note{i}": "y" * 900_000 for i in range(5)}),
            ),
            r"huge-total\.onnx was refused: model metadata \(15 entries\) is [\d,]+ bytes in all, above the 4,000,000",
        ),
        "input-too-large": BadModel(
            onnx_factory.save_model(folder / "giant.onnx", size=100_000, metadata=None, with_cam=False),
            r"giant\.onnx: model input is 100000 x 100000 pixels; at most 8,192 a side",
        ),
        "external-parent": BadModel(
            _with_external_weights(folder, "parent.onnx", "../secret.bin", secret),
            r"parent\.onnx was refused: tensor 'weights' keeps its data in another file outside the model's folder "
            r"\(\.\./secret\.bin\)",
        ),
        "external-absolute": BadModel(
            _with_external_weights(folder, "absolute.onnx", str(secret), secret),
            r"absolute\.onnx was refused: tensor 'weights' keeps its data in another file at an absolute path",
        ),
        "external-symlink": BadModel(
            _with_external_weights(folder, "symlink.onnx", "link-out.bin", secret),
            r"symlink\.onnx was refused: .* outside the model's folder \(link-out\.bin\)",
        ),
        "external-deep-parent": BadModel(
            _with_external_weights(folder, "sneaky.onnx", "sub/../../secret.bin", secret),
            r"sneaky\.onnx was refused: .* outside the model's folder",
        ),
        "external-missing": BadModel(
            _with_external_weights(folder, "missing.onnx", "gone.bin", root / "elsewhere.bin"),
            r"missing\.onnx was refused: .*gone\.bin, which is missing or not a regular file",
        ),
        "external-in-attribute": BadModel(
            _external_in_constant_node(folder, "../secret.bin"),
            r"constant-node\.onnx was refused: tensor 'weights_value' .* outside the model's folder",
        ),
    }
    return cases


# The file-level refusals must happen before ONNX Runtime sees the file.
REFUSED_BEFORE_ORT = {
    "empty",
    "truncated",
    "text",
    "huge-entry",
    "huge-total",
    "external-parent",
    "external-absolute",
    "external-symlink",
    "external-deep-parent",
    "external-missing",
    "external-in-attribute",
}
ALL_CASES = [
    "text",
    "html",
    "empty",
    "truncated",
    "cut-early",
    "float-input",
    "nchw",
    "rank-3",
    "dynamic-spatial",
    "label-count",
    "malformed-json",
    "deep-json",
    "huge-entry",
    "huge-total",
    "input-too-large",
    "external-parent",
    "external-absolute",
    "external-symlink",
    "external-deep-parent",
    "external-missing",
    "external-in-attribute",
]


def test_every_case_is_listed(bad_models: dict[str, BadModel]) -> None:
    assert sorted(bad_models) == sorted(ALL_CASES)


@pytest.mark.parametrize("case", ALL_CASES)
def test_bad_model_gets_one_clear_line(bad_models: dict[str, BadModel], case: str, monkeypatch) -> None:
    bad = bad_models[case]
    if case in REFUSED_BEFORE_ORT:

        def tripwire(*args, **kwargs):
            raise AssertionError(f"ONNX Runtime was asked to open {bad.path.name}")

        monkeypatch.setattr(model_module.ort, "InferenceSession", tripwire)
    with pytest.raises(ModelLoadError) as caught:
        load_model(bad.path, provider="cpu")
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400, message
    assert bad.path.name in message
    assert re.search(bad.expected, message), message


def test_external_data_inside_the_folder_still_loads(tmp_path: Path) -> None:
    """The check refuses only what leaves the folder: a model saved with its data beside it loads."""
    path = _with_external_weights(tmp_path, "beside.onnx", "data/beside.bin")
    model = load_model(path, provider="cpu")
    probs, _ = model.predict(np.zeros((1, 16, 16, 3), np.uint8))
    assert probs.shape == (1, 3)


def test_external_data_outside_is_also_refused_by_onnxruntime(bad_models: dict[str, BadModel]) -> None:
    """Belt and braces: the installed ONNX Runtime refuses the same file on its own."""
    import onnxruntime as ort

    with pytest.raises(Exception, match="(?i)escapes model directory|outside|not allowed"):
        ort.InferenceSession(str(bad_models["external-parent"].path), providers=["CPUExecutionProvider"])


def test_metadata_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """ONNX Runtime's binding raises UnicodeDecodeError on such metadata; we refuse it cleanly."""
    data = bytearray(onnx_factory.build_model().SerializeToString())
    index = data.index(b"factory-mean-colour")
    data[index] = 0xFF
    path = tmp_path / "latin1.onnx"
    path.write_bytes(bytes(data))
    with pytest.raises(
        ModelLoadError, match=r"latin1\.onnx was refused: the value of model metadata 'backbone' is not valid UTF-8"
    ):
        load_model(path, provider="cpu")


def test_unreadable_model_file(tmp_path: Path, colour_model: Path, monkeypatch) -> None:
    """Permission denied, simulated at the OS boundary (the tests run as root, who can read anything)."""
    path = tmp_path / "locked.onnx"
    path.write_bytes(colour_model.read_bytes())
    real_open = open

    def deny(file, *args, **kwargs):
        if Path(os.fsdecode(file)) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(ModelLoadError, match=r"locked\.onnx: permission denied"):
        load_model(path, provider="cpu")


def test_names_that_are_not_utf8_are_refused_quietly(tmp_path: Path, capfd) -> None:
    """ORT echoes graph names in its errors; undecodable ones made its binding print to stdout."""
    data = bytearray(onnx_factory.build_model().SerializeToString())
    data[data.index(b"keepdims")] = 0x80  # an attribute name
    path = tmp_path / "bad-name.onnx"
    path.write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(ModelLoadError, match=r"bad-name\.onnx was refused: a name in the graph .* is not valid UTF-8"):
        load_model(path, provider="cpu")
    assert capfd.readouterr() == ("", "")


def test_model_failing_its_test_run_gives_one_line_and_no_log_noise(tmp_path: Path, capfd) -> None:
    model = onnx_factory.build_model()
    shape = next(t for t in model.graph.initializer if t.name == "block_shape")
    shape.CopyFrom(numpy_helper.from_array(np.array([-1, 5, 4, 4, 4, 3], np.int64), "block_shape"))
    path = _save(model, tmp_path / "bad-reshape.onnx")
    capfd.readouterr()
    with pytest.raises(ModelLoadError, match=r"^bad-reshape\.onnx: model failed on a test image: .*Reshape") as caught:
        load_model(path, provider="cpu")
    assert "\n" not in str(caught.value)
    assert capfd.readouterr() == ("", "")
