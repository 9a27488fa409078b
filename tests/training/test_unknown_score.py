"""The exported `unknown_score`: it tells held-out digits from images unlike them, the file
computes what numpy computes from Keras's features, fp16/int8 keep it, and readers get it.

One tiny LeNet-5 run (conftest's `lenet_run`, 600 of scikit-learn's 1,797 digits) is
exported once per precision for the whole module. The targets come from
`python -m training.ood_study` (docs/unknown-inputs.md): over six tiny runs the shipped
score (Mahalanobis on the pooled base features) reached AUROC 0.997-1.000 against
photo crops, noise, flat colours, shapes and letters, accepted 0-1 % of them at the
95 % validation threshold, and accepted 90-95 % of the held-out digits. The asserts
leave margin for run-to-run variation but fail for any logit-based score
(1 - max softmax: AUROC 0.85-0.88, 49-74 % of OOD accepted; energy 0.86-0.91).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from convnet_common import model_format as fmt
from convnet_common.model_contract import read_contract
from convnet_common.run_layout import RunFolder
from convnet_common.unknown_score import KEY_UNKNOWN, QUANTILE_COUNT, UNKNOWN_OUTPUT

pytestmark = pytest.mark.slow

MIN_AUROC = 0.97  # measured 0.997-1.000
MAX_OOD_ACCEPTED = 0.05  # measured 0.00-0.01
MIN_ID_ACCEPTED = 0.85  # measured 0.90-0.95 (the threshold is the 95 % point of 120 validation images)
MIN_INT8_AUROC = 0.95  # int8 quantises the feature map in front of the score (measured ~0.99)


def _ort(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported(lenet_run, tmp_path_factory):
    from training.export import export_run

    folder = tmp_path_factory.mktemp("unknown")
    return {p: export_run(lenet_run, folder / f"lenet-{p}.onnx", precision=p) for p in ("fp32", "fp16", "int8")}


@pytest.fixture(scope="module")
def held_out():
    """(held-out digits, OOD images) at the run's 32 x 32: digits `write_digits` did not write."""
    from sklearn.datasets import load_digits

    from training.ood_study import at_model_size, ood_sets

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))[600:]  # write_digits(…, 600, seed=0)
    known = [np.repeat((digits.images[i] * 255 / 16).astype(np.uint8)[:, :, None], 3, axis=2) for i in order]
    unknown = [image for images in ood_sets(seed=7, per_set=60).values() for image in images]
    return at_model_size(known, 32), at_model_size(unknown, 32)


def _auroc(inside, outside) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.zeros(len(inside)), np.ones(len(outside))], np.r_[inside, outside]))


def _record(path) -> dict:
    return json.loads(_ort(path).get_modelmeta().custom_metadata_map[KEY_UNKNOWN])


def test_score_tells_unknown_images_from_held_out_digits(exported, held_out):
    from training.unknown_score import onnx_scores

    path = exported["fp32"].path
    known, unknown = held_out
    session = _ort(path)
    inside, outside = onnx_scores(session, known), onnx_scores(session, unknown)
    threshold = _record(path)["threshold"]
    assert _auroc(inside, outside) >= MIN_AUROC
    assert np.mean(outside <= threshold) <= MAX_OOD_ACCEPTED
    assert np.mean(inside <= threshold) >= MIN_ID_ACCEPTED


def test_file_score_equals_numpy_from_keras_features(lenet_run, exported, held_out):
    """Same graph as the probabilities, same numbers as the fit in numpy (relative 1e-4)."""
    from training.export import load_run
    from training.unknown_score import mahalanobis_scores, prepare_for_export, score_inputs

    classifier, result, split = load_run(lenet_run)
    fit = prepare_for_export(classifier, split, int(result["image_size"])).fit
    images = np.concatenate([held_out[0][:100], held_out[1][:100]])
    expected = mahalanobis_scores(fit, score_inputs(classifier, images, fit.features))
    session = _ort(exported["fp32"].path)
    _, scores = session.run([fmt.PROBABILITIES_OUTPUT, UNKNOWN_OUTPUT], {fmt.INPUT_NAME: images})
    assert scores.shape == (len(images),) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    assert exported["fp32"].max_unknown_score_difference <= 1e-4


def test_fp16_and_int8_keep_the_score(exported, held_out):
    from training.unknown_score import SCORE_TOLERANCE, onnx_scores, score_difference

    known, unknown = held_out
    images = np.concatenate([known[:200], unknown])
    reference = onnx_scores(_ort(exported["fp32"].path), images)
    fp16 = onnx_scores(_ort(exported["fp16"].path), images)
    assert score_difference(reference, fp16) <= SCORE_TOLERANCE["fp16"]  # measured ~0.01
    int8 = _ort(exported["int8"].path)
    assert exported["int8"].max_unknown_score_difference <= SCORE_TOLERANCE["int8"]
    assert _auroc(onnx_scores(int8, known), onnx_scores(int8, unknown)) >= MIN_INT8_AUROC
    fp32_record = _record(exported["fp32"].path)
    for precision in ("fp16", "int8"):  # the converted files keep the entry, re-thresholded on their own scores
        record = _record(exported[precision].path)
        assert record["scored_by"] == f"the {precision} file"
        for key in ("method", "accept_rate", "images", "parameters", "higher_is"):
            assert record[key] == fp32_record[key]


def test_each_file_threshold_accepts_the_stated_share_of_its_own_validation_scores(lenet_run, exported):
    """int8 quantises the feature map in front of the score: with the fp32 threshold about
    6 % of validation images crossed it. Each file's threshold now comes from its own scores
    (computed on this machine at export, and again here)."""
    from training import data
    from training.unknown_score import onnx_scores

    split = json.loads(RunFolder(lenet_run).split.read_text())
    images, _ = data.load_batch([data.Sample(path, label) for path, label in split["val"]], 32)
    for precision in ("fp32", "fp16", "int8"):
        record = _record(exported[precision].path)
        scores = onnx_scores(_ort(exported[precision].path), images)
        accepted = float(np.mean(scores <= record["threshold"]))
        # the threshold is the 95 % quantile of these very scores, rounded to 7 digits
        assert accepted == pytest.approx(record["accept_rate"], abs=1.5 / len(images)), precision


def test_metadata_round_trips_through_the_contract(exported):
    path = exported["fp32"].path
    record = _record(path)
    assert record["method"] == "mahalanobis" and record["accept_rate"] == 0.95
    assert len(record["quantiles"]) == QUANTILE_COUNT and record["images"] == 120
    assert record["parameters"]["fit_split"] == "training"
    session = _ort(path)
    contract = read_contract(session.get_modelmeta().custom_metadata_map, session.get_inputs(), session.get_outputs())
    assert contract.unknown_name == UNKNOWN_OUTPUT
    assert contract.metadata.unknown.threshold == pytest.approx(record["threshold"])
    assert contract.metadata.unknown.accepted_share(record["threshold"]) == pytest.approx(0.95, abs=0.01)
    for size in contract.test_batch_sizes:
        outputs = session.run(contract.test_outputs, {contract.input_name: contract.test_batch(size)})
        contract.check_test_run(outputs, size)


def test_model_without_the_score_still_loads(lenet_run, tmp_path):
    """An export from before the score (no output, no metadata): no verdict, loads as before."""
    from training.export import convert_to_onnx, load_run, set_metadata
    from training.model_builder import build_export_model

    classifier, _, _ = load_run(lenet_run)
    proto = convert_to_onnx(build_export_model(classifier), 32)
    set_metadata(proto, {fmt.KEY_FORMAT_VERSION: fmt.FORMAT_VERSION, fmt.KEY_LABELS: json.dumps(list("0123456789"))})
    path = tmp_path / "old.onnx"
    path.write_bytes(proto.SerializeToString())
    session = _ort(path)
    assert UNKNOWN_OUTPUT not in [o.name for o in session.get_outputs()]
    contract = read_contract(session.get_modelmeta().custom_metadata_map, session.get_inputs(), session.get_outputs())
    assert contract.unknown_name is None and contract.metadata.unknown is None
    outputs = session.run(contract.test_outputs, {contract.input_name: contract.test_batch(2)})
    assert contract.check_test_run(outputs, 2).labels == list("0123456789")
