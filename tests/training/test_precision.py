"""fp16 and int8 versions of an exported LeNet run: same contract, same answers, smaller files.

int8 answers must not depend on the CPU the tests run on (AVX2, AVX-512, VNNI pick
different integer kernels in ONNX Runtime). So no test here passes or fails by which
kernels ran: the pass path checks on images where fp32 is sure by a wide margin, the
CPU-independent properties are read from the graph or from the unfused reference, and
every refusal is provoked by something that is wrong on every CPU.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from convnet_common import model_format as fmt
from training import data, int8_safety, precision
from training.int8_safety import FULL_RANGE_S8S8, Int8Scheme, cpu_description, saturating_operands
from training.precision import (
    KERNEL_AGREEMENT_THRESHOLD,
    PRECISION_THRESHOLDS,
    PrecisionError,
    agreement,
    convert_and_check,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lenet_fp32(lenet_run, tmp_path_factory):
    """(fp32 model, its file size, training images for calibration, validation images for the check)."""
    from training.export import export_run

    path = tmp_path_factory.mktemp("precision") / "fp32.onnx"
    # Without the LayerCAM output: its backward pass stays float in every precision, so the
    # size bounds below would measure it rather than the conversion (tests/training/
    # test_fine_cam.py converts a file with it to int8).
    export_run(lenet_run, path, fine_map=False)
    split = json.loads((lenet_run / "split.json").read_text())
    calibration, _ = data.load_batch([data.Sample(p, label) for p, label in split["train"]], 32)
    check, _ = data.load_batch([data.Sample(p, label) for p, label in split["val"]], 32)
    return onnx.load(str(path)), path.stat().st_size, calibration, check


# fp32's top-1 probability exceeds its runner-up by at least this on the "sure" images:
# a change of class there needs a probability error of 0.1 or more, about seven times
# what the int8 scheme shows on this network (benchmarks/bench_int8.py), while a
# saturating kernel shows 0.1 to 0.2.
SURE_MARGIN = 0.2


@pytest.fixture(scope="module")
def sure_images(lenet_fp32):
    """The check images on which the fp32 model is sure (chosen by its own outputs)."""
    fp32, _, _, check = lenet_fp32
    probabilities = _session(fp32).run([fmt.PROBABILITIES_OUTPUT], {fmt.INPUT_NAME: check})[0]
    top = np.sort(probabilities, axis=1)
    sure = check[top[:, -1] - top[:, -2] >= SURE_MARGIN]
    assert len(sure) >= 0.75 * len(check), "the LeNet fixture should be sure of most validation images"
    return sure


@pytest.fixture(scope="module")
def converted(lenet_fp32, sure_images):
    """convert_and_check's (model, Agreement) per precision, made once for the module."""
    fp32, _, calibration, _ = lenet_fp32
    made = {}

    def get(kind):
        if kind not in made:
            made[kind] = convert_and_check(fp32, kind, calibration, sure_images)
        return made[kind]

    return get


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _io(model):
    return [(v.name, v.type.tensor_type.elem_type) for v in (*model.graph.input, *model.graph.output)]


def _metadata(model):
    return {p.key: p.value for p in model.metadata_props}


def _check_record(model):
    return json.loads(_metadata(model)[fmt.KEY_PRECISION_CHECK])


def _is_int8(model):
    return hasattr(model, "graph") and any(node.op_type == "QuantizeLinear" for node in model.graph.node)


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
def test_conversion_keeps_the_contract_and_the_answers(lenet_fp32, sure_images, converted, kind, tmp_path):
    fp32, fp32_size, _, check = lenet_fp32
    model, result = converted(kind)

    assert result.images == len(sure_images)
    assert result.top1_agreement == 1.0  # a change needs an error of SURE_MARGIN / 2, on any CPU
    assert result.max_probability_difference < 0.1
    assert (
        _io(model)
        == _io(fp32)
        == [
            (fmt.INPUT_NAME, onnx.TensorProto.UINT8),
            (fmt.PROBABILITIES_OUTPUT, onnx.TensorProto.FLOAT),
            (fmt.CAM_OUTPUT, onnx.TensorProto.FLOAT),
            ("unknown_score", onnx.TensorProto.FLOAT),  # training.unknown_score
        ]
    )
    meta, original = _metadata(model), _metadata(fp32)
    assert meta[fmt.KEY_PRECISION] == kind
    assert original[fmt.KEY_PRECISION] == "fp32"
    unchanged = (fmt.KEY_PRECISION, fmt.KEY_PRECISION_CHECK)
    assert {k: v for k, v in meta.items() if k not in unchanged} == {
        k: v for k, v in original.items() if k not in unchanged
    }
    record = _check_record(model)
    assert record["precision"] == kind
    assert record["check_images"] == result.images
    assert record["top1_agreement"] == pytest.approx(result.top1_agreement, abs=1e-6)
    assert record["max_probability_difference"] == pytest.approx(result.max_probability_difference, abs=1e-6)
    assert record["required_top1_agreement"] == PRECISION_THRESHOLDS[kind]
    assert record["checked_on"]["onnxruntime"] == ort.__version__
    assert record["checked_on"]["cpu"] == cpu_description()["cpu"]

    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(model.SerializeToString())
    size = path.stat().st_size
    print(
        f"\n{kind}: {size} bytes (fp32 {fp32_size}), top-1 agreement {result.top1_agreement:.4f}, "
        f"max probability difference {result.max_probability_difference:.2e}"
    )
    assert size < 0.6 * fp32_size
    if kind == "int8":  # export already folded tf2onnx's shape-only tensors out of the fp32 file
        assert size < 0.5 * fp32_size
        assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)

    # The file runs in ONNX Runtime on the CPU and gives what the app reads.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map[fmt.KEY_PRECISION] == kind
    probabilities, cam, *_ = session.run(None, {fmt.INPUT_NAME: check[:4]})  # and unknown_score
    assert probabilities.dtype == np.float32 and cam.dtype == np.float32
    assert probabilities.shape == (4, 10) and cam.shape == (4, 10, 10, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=2e-2)


def test_int8_answers_do_not_depend_on_the_cpu(lenet_fp32, converted):
    """Read from the graph (no saturation anywhere) and from the unfused reference, on all
    check images: what makes the file give the same answers on every x86 CPU."""
    fp32, _, _, check = lenet_fp32
    model, _ = converted("int8")
    assert saturating_operands(model) == []
    record = _check_record(model)
    assert record["saturation_free"] is True
    assert record["quantization"]["reduce_range"] and record["quantization"]["activations"] == "uint8"
    assert record["kernel_top1_agreement"] >= KERNEL_AGREEMENT_THRESHOLD

    reference = precision._session(model, reference=True)
    kernels = agreement(reference, precision._session(model), check)
    assert kernels.top1_agreement >= KERNEL_AGREEMENT_THRESHOLD, "integer kernels changed answers on this CPU"
    assert kernels.max_probability_difference < 0.05
    independent = agreement(_session(fp32), reference, check)
    assert independent.top1_agreement >= 0.95  # the 0.98 export threshold is checked on the sure images
    assert independent.max_probability_difference < 0.1


@pytest.mark.parametrize(
    "scheme, why",
    [
        (FULL_RANGE_S8S8, r"int8 weights up to 12\d"),
        (Int8Scheme("int8", "int8", reduce_range=True, per_channel=True), r"int8 activation .* as second operand"),
    ],
)
def test_int8_schemes_that_can_saturate_are_refused_on_every_cpu(lenet_fp32, sure_images, scheme, why):
    fp32, _, calibration, _ = lenet_fp32
    with pytest.raises(PrecisionError, match=r"can saturate in the integer kernels of CPUs without VNNI .*" + why):
        convert_and_check(fp32, "int8", calibration, sure_images, scheme)


def test_badly_calibrated_int8_is_refused(lenet_fp32):
    """Calibrated on black images, every activation range is wrong: a real bad quantisation."""
    fp32, _, calibration, check = lenet_fp32
    black = np.zeros_like(calibration[:16])
    with pytest.raises(
        PrecisionError,
        match=r"int8 model changes the top-1 class on \d+ of 120 check images even "
        r"without ONNX Runtime's integer kernels .*Keep fp32",
    ):
        convert_and_check(fp32, "int8", black, check)


def test_int8_whose_kernels_disagree_with_the_reference_is_refused(lenet_fp32, sure_images, monkeypatch):
    """As on a CPU whose integer kernels saturate: the fused session (only) answers differently."""
    fp32, _, calibration, _ = lenet_fp32
    real = precision._session
    wrong = _perturbed(fp32)
    monkeypatch.setattr(
        precision,
        "_session",
        lambda model, reference=False: real(wrong) if _is_int8(model) and not reference else real(model, reference),
    )
    with pytest.raises(
        PrecisionError,
        match=r"integer kernels on this CPU \(.*\) change the int8 model's top-1 "
        r"class on \d+ of \d+ check images .* depend on the CPU",
    ):
        convert_and_check(fp32, "int8", calibration, sure_images)


def test_the_desktop_reads_a_checked_model(converted, tmp_path):
    from desktop.core.model_metadata import info_from_metadata

    for kind in ("fp16", "int8"):
        model, _ = converted(kind)
        metadata = _metadata(model)
        info = info_from_metadata(metadata, path=tmp_path / "m.onnx", file_size=1, input_size=(32, 32))
        assert info.precision == kind and info.labels == json.loads(metadata[fmt.KEY_LABELS])
        fmt.metadata_json(metadata, fmt.KEY_PRECISION_CHECK, dict, "a JSON object")  # parses within the limits


@pytest.mark.parametrize(
    "flags, vnni",
    [
        ("fpu sse4_1 avx2 fma", False),
        ("sse4_1 avx2 avx512f avx512bw avx512_vnni", True),
        ("sse4_1 avx2 avx_vnni", True),
    ],
)
def test_cpu_description_names_the_integer_kernel_features(flags, vnni):
    described = cpu_description(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    assert described["cpu"] == "Some CPU" and described["vnni"] is vnni
    assert described["isa"] == [flag for flag in int8_safety.ISA_FLAGS if flag in flags.split()]


def test_agreement_reports_a_broken_candidate(lenet_fp32):
    fp32, _, _, check = lenet_fp32
    same = agreement(_session(fp32), _session(fp32), check)
    assert same.top1_agreement == 1.0 and same.max_probability_difference == 0.0 and same.images == len(check)
    broken = agreement(_session(fp32), _session(_perturbed(fp32)), check)
    assert broken.top1_agreement < 0.5
    assert broken.max_probability_difference > 0.3


def test_convert_and_check_refuses_a_conversion_that_changes_predictions(lenet_fp32, monkeypatch):
    fp32, _, calibration, check = lenet_fp32
    monkeypatch.setattr(precision, "to_int8", lambda model, images, scheme: _perturbed(model))
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
