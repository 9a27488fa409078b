"""Sources that cannot be adopted: each stops with one clear line, exit 2, and writes nothing.

Nothing means nothing: neither --out nor a temporary file beside it. The models are made
here: two inputs, a text output, a non-image input, a custom operator, external data
outside the model's folder, a label file of the wrong length, a truncated file, a folder
of no known kind, a model that is ConvNet Studio's already, a memory bomb (stopped by the
guarded probe, not run here), and settings the source cannot reveal.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from adopt_factory import IR_VERSION, foreign_classifier
from onnx import TensorProto, helper, numpy_helper

HALF = ["--mean", "0.5", "0.5", "0.5", "--std", "0.5", "0.5", "0.5"]


def _save(model: onnx.ModelProto, path, check: bool = True):
    model.ir_version = IR_VERSION
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _dense_head(nodes, inits, start: str, out: str = "logits", classes: int = 5) -> None:
    inits.append(numpy_helper.from_array(np.ones((classes, 3), np.float32), "w"))
    nodes += [
        helper.make_node("GlobalAveragePool", [start], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w"], [out], transB=1),
    ]


def _model(nodes, inits, inputs, outputs, opsets=(("", 17),)):
    graph = helper.make_graph(nodes, "bad", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


def _image(name="x", shape=("N", 3, 16, 16), elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, list(shape))


def _scores(name="logits", elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, ["N", 5])


def two_inputs(folder):
    nodes, inits = [helper.make_node("Add", ["x", "y"], ["xy"])], []
    _dense_head(nodes, inits, "xy")
    return _save(_model(nodes, inits, [_image("x"), _image("y")], [_scores()]), folder / "two.onnx")


def text_output(folder):
    nodes, inits = [], []
    _dense_head(nodes, inits, "x")
    nodes.append(helper.make_node("Cast", ["logits"], ["names"], to=TensorProto.STRING))
    return _save(_model(nodes, inits, [_image()], [_scores("names", TensorProto.STRING)]), folder / "text.onnx")


def flat_input(folder):
    inits = [numpy_helper.from_array(np.ones((5, 784), np.float32), "w")]
    nodes = [helper.make_node("Gemm", ["x", "w"], ["logits"], transB=1)]
    return _save(_model(nodes, inits, [_image(shape=("N", 784))], [_scores()]), folder / "flat.onnx")


def custom_operator(folder):
    nodes, inits = [helper.make_node("FancyConv", ["x"], ["fancy"], domain="com.example.vision")], []
    _dense_head(nodes, inits, "fancy")
    model = _model(nodes, inits, [_image()], [_scores()], (("", 17), ("com.example.vision", 1)))
    return _save(model, folder / "custom.onnx")


def external_data_outside(folder):
    models = folder / "models"
    models.mkdir()
    nodes, inits = [], []
    _dense_head(nodes, inits, "x")
    model = _model(nodes, inits, [_image()], [_scores()])
    weights = model.graph.initializer[0]
    (folder / "weights.bin").write_bytes(weights.raw_data or np.ones((5, 3), np.float32).tobytes())
    weights.ClearField("raw_data")
    weights.ClearField("float_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../weights.bin"), ("offset", "0"), ("length", "60")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    return _save(model, models / "outside.onnx", check=False)


def wrong_label_count(folder):
    (folder / "labels.txt").write_text("cat\ndog\nfox\nowl\n", encoding="utf-8")
    return foreign_classifier(folder / "pets.onnx", classes=5)


def truncated(folder):
    whole = foreign_classifier(folder / "whole.onnx").read_bytes()
    path = folder / "truncated.onnx"
    path.write_bytes(whole[: len(whole) // 2])
    (folder / "whole.onnx").unlink()
    return path


def unknown_folder(folder):
    source = folder / "some-export"
    source.mkdir()
    (source / "README.md").write_text("not a model", encoding="utf-8")
    return source


def already_uint8(folder):
    nodes, inits = [helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT)], []
    _dense_head(nodes, inits, "x")
    model = _model(nodes, inits, [_image("image", ("N", 16, 16, 3), TensorProto.UINT8)], [_scores()])
    return _save(model, folder / "ours.onnx")


def memory_bomb(folder):
    """A float classifier that also asks for a 19 GB tensor sized from its input when run."""
    nodes, inits = [], []
    _dense_head(nodes, inits, "x", out="clean")
    inits += [
        numpy_helper.from_array(np.array([1, 1, 2500, 2500], np.int64), "factor"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes += [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Mul", ["shape", "factor"], ["big"]),
        helper.make_node("ConstantOfShape", ["big"], ["bomb"], value=helper.make_tensor("v", 1, [1], [1.0])),
        helper.make_node("ReduceSum", ["bomb"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["clean", "nothing"], ["logits"]),
    ]
    return _save(_model(nodes, inits, [_image()], [_scores()]), folder / "bomb.onnx")


def ambiguous_layout(folder):
    nodes, inits = [], []
    _dense_head(nodes, inits, "x")
    return _save(_model(nodes, inits, [_image(shape=(1, 3, 3, 3))], [_scores()]), folder / "tiny.onnx")


def no_scaling(folder):
    return foreign_classifier(folder / "plain.onnx")


# builder: (extra flags, what stderr must say)
CASES = {
    "two-inputs": (two_inputs, HALF, r"two.onnx has 2 inputs \('x', 'y'\); an image classifier takes one image tensor"),
    "text-output": (text_output, HALF, r"gives no class scores .*output 'names' is text \(string\)"),
    "rank-2-input": (flat_input, HALF, r"input 'x' float32 \[\?, 784\] is not an image \(rank 2"),
    "custom-op": (custom_operator, HALF, r"custom operator FancyConv from domain 'com.example.vision'"),
    "external-outside": (external_data_outside, HALF, r"outside\.onnx is refused: .*outside the model's folder"),
    "label-count": (wrong_label_count, HALF, r"labels\.txt has 4 names but pets\.onnx gives 5 scores"),
    "truncated": (truncated, HALF, r"truncated\.onnx is not a loadable ONNX model \(not ONNX, truncated or damaged"),
    "unknown-folder": (unknown_folder, HALF, r"some-export is a folder that holds no model this command reads"),
    "already-ours": (already_uint8, HALF, r"ours\.onnx already takes uint8 pixels"),
    "memory-bomb-guard": (memory_bomb, HALF, r"the original model's test run was stopped: .*needed more than"),
    "memory-bomb-check": (memory_bomb, [*HALF, "--output", "logits"], r"bomb\.onnx.*needed more than"),
    "ambiguous-layout": (
        ambiguous_layout,
        HALF,
        r"cannot tell whether tiny\.onnx's input .* is NCHW or NHWC: give --layout",
    ),
    "no-scaling": (no_scaling, [], r"cannot tell the pixel scaling of plain\.onnx: give --mean and --std"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_source_stops_with_one_line_and_writes_nothing(name, tmp_path, run_cli):
    build, flags, message = CASES[name]
    source = build(tmp_path)
    out_folder = tmp_path / "adopted"
    out_folder.mkdir()
    out = out_folder / "model.onnx"
    status, stdout, stderr = run_cli("adopt", source, "--out", out, *flags)
    assert status == 2, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("convnet-train: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    import re

    assert re.search(message, lines[0]), lines[0]
    assert list(out_folder.iterdir()) == []  # neither the file nor a temporary one


def test_a_truncated_source_in_inspect_json_mode_is_an_error_object(tmp_path, run_cli):
    import json

    source = truncated(tmp_path)
    status, stdout, stderr = run_cli("adopt", source, "--inspect", "--json")
    assert status == 2
    reply = json.loads(stdout)
    assert set(reply) == {"schema", "error"} and reply["schema"] == 1
    assert "not a loadable ONNX model" in reply["error"] and "not a loadable ONNX model" in stderr


def test_a_check_that_disagrees_writes_nothing(tmp_path, monkeypatch):
    """An original whose answers differ from its graph (a reader bug, a non-deterministic
    model) fails the check: nothing is written and the message gives the difference."""
    from training.adopt import pipeline
    from training.adopt.onnx_source import read_onnx_source
    from training.adopt.settings import AdoptFlags
    from training.adopt.source import AdoptError

    source = read_onnx_source(foreign_classifier(tmp_path / "drifts.onnx"))
    honest = source.reference

    def drifting(batch):
        scores = honest(batch)
        scores[:, 0] += 0.01  # a 1 % nudge to one logit: probabilities move by about 1e-3
        return scores

    source.reference = drifting
    monkeypatch.setattr(pipeline, "read_source", lambda path: source)
    out = tmp_path / "adopted" / "drifts.onnx"
    flags = AdoptFlags(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    with pytest.raises(
        AdoptError, match=r"differ from the original's by up to .* \(tolerance 1e-04\); nothing was written"
    ):
        pipeline.adopt(tmp_path / "drifts.onnx", out, flags, echo=lambda line: None)
    assert not out.exists() and list(out.parent.iterdir()) == []
