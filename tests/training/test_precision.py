"""fp16 and int8 versions of an exported LeNet run: same contract, same answers, smaller files."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from convnet_common import model_format as fmt
from training import data, precision
from training.precision import PRECISION_THRESHOLDS, PrecisionError, agreement, convert_and_check

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lenet_fp32(lenet_run, tmp_path_factory):
    """(fp32 model, its file size, training images for calibration, validation images for the check)."""
    from training.export import export_run

    path = tmp_path_factory.mktemp("precision") / "fp32.onnx"
    export_run(lenet_run, path)
    split = json.loads((lenet_run / "split.json").read_text())
    calibration, _ = data.load_batch([data.Sample(p, label) for p, label in split["train"]], 32)
    check, _ = data.load_batch([data.Sample(p, label) for p, label in split["val"]], 32)
    return onnx.load(str(path)), path.stat().st_size, calibration, check


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _io(model):
    return [(v.name, v.type.tensor_type.elem_type) for v in (*model.graph.input, *model.graph.output)]


def _metadata(model):
    return {p.key: p.value for p in model.metadata_props}


def _perturbed(model, seed=0):
    """The same graph with random weights: a conversion gone badly wrong."""
    broken = onnx.ModelProto.FromString(model.SerializeToString())
    rng = np.random.default_rng(seed)
    for index, init in enumerate(broken.graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size > 100:
            noise = rng.normal(0.0, 0.5, array.shape).astype(np.float32)
            broken.graph.initializer[index].CopyFrom(numpy_helper.from_array(noise, init.name))
    return broken


@pytest.mark.parametrize("kind", ["fp16", "int8"])
def test_conversion_keeps_the_contract_and_the_answers(lenet_fp32, kind, tmp_path):
    fp32, fp32_size, calibration, check = lenet_fp32
    converted, result = convert_and_check(fp32, kind, calibration, check)

    assert result.images == len(check)
    assert result.top1_agreement >= PRECISION_THRESHOLDS[kind]
    assert result.max_probability_difference < 0.1
    assert _io(converted) == _io(fp32) == [
        (fmt.INPUT_NAME, onnx.TensorProto.UINT8),
        (fmt.PROBABILITIES_OUTPUT, onnx.TensorProto.FLOAT),
        (fmt.CAM_OUTPUT, onnx.TensorProto.FLOAT),
    ]
    meta, original = _metadata(converted), _metadata(fp32)
    assert meta[fmt.KEY_PRECISION] == kind
    assert original[fmt.KEY_PRECISION] == "fp32"
    assert {k: v for k, v in meta.items() if k != fmt.KEY_PRECISION} == {
        k: v for k, v in original.items() if k != fmt.KEY_PRECISION
    }

    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(converted.SerializeToString())
    size = path.stat().st_size
    print(f"\n{kind}: {size} bytes (fp32 {fp32_size}), top-1 agreement {result.top1_agreement:.4f}, "
          f"max probability difference {result.max_probability_difference:.2e}")
    assert size < 0.6 * fp32_size
    if kind == "int8":  # export already folded tf2onnx's shape-only tensors out of the fp32 file
        assert size < 0.5 * fp32_size
        assert any(node.op_type == "QuantizeLinear" for node in converted.graph.node)

    # The file runs in ONNX Runtime on the CPU and gives what the app reads.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map[fmt.KEY_PRECISION] == kind
    probabilities, cam = session.run(None, {fmt.INPUT_NAME: check[:4]})
    assert probabilities.dtype == np.float32 and cam.dtype == np.float32
    assert probabilities.shape == (4, 10) and cam.shape == (4, 10, 10, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=2e-2)


def test_agreement_reports_a_broken_candidate(lenet_fp32):
    fp32, _, _, check = lenet_fp32
    same = agreement(_session(fp32), _session(fp32), check)
    assert same.top1_agreement == 1.0 and same.max_probability_difference == 0.0 and same.images == len(check)
    broken = agreement(_session(fp32), _session(_perturbed(fp32)), check)
    assert broken.top1_agreement < 0.5
    assert broken.max_probability_difference > 0.3


def test_convert_and_check_refuses_a_conversion_that_changes_predictions(lenet_fp32, monkeypatch):
    fp32, _, calibration, check = lenet_fp32
    monkeypatch.setattr(precision, "to_int8", lambda model, images: _perturbed(model))
    with pytest.raises(PrecisionError, match=r"int8 model changes the top-1 class on \d+ of 120 check images"):
        convert_and_check(fp32, "int8", calibration, check)


def test_bad_requests_are_refused_clearly(lenet_fp32):
    fp32, _, _, check = lenet_fp32
    with pytest.raises(PrecisionError, match="unknown precision 'int4'"):
        convert_and_check(fp32, "int4", None, check)
    with pytest.raises(PrecisionError, match="calibration images"):
        convert_and_check(fp32, "int8", None, check)
    with pytest.raises(PrecisionError, match="uint8 NHWC"):
        precision.to_int8(fp32, check.astype(np.float32))


def test_shape_only_constants_are_folded(lenet_run, lenet_fp32):
    import tensorflow as tf
    import tf2onnx

    from training.export import load_run
    from training.model_builder import build_export_model

    exported, _, _, check = lenet_fp32
    classifier, _, _ = load_run(lenet_run)
    signature = (tf.TensorSpec((None, 32, 32, 3), tf.uint8, name="image"),)
    raw, _ = tf2onnx.convert.from_keras(build_export_model(classifier), input_signature=signature, opset=17)
    folded = precision.fold_initializer_shapes(raw)
    assert folded.ByteSize() < 0.7 * raw.ByteSize()  # tf2onnx's Grad-CAM graph keeps such constants
    result = agreement(_session(raw), _session(folded), check)
    assert result.top1_agreement == 1.0 and result.max_probability_difference == 0.0
    initializers = {init.name for init in exported.graph.initializer}
    assert not [n for n in exported.graph.node if n.op_type == "Shape" and n.input[0] in initializers], (
        "export_run should fold them already"
    )
