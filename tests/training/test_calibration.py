"""Temperature scaling: the fit, the run's record, the calibrated export graph, the report."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import calibration as cal

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# --------------------------------------------------------------------------- the maths


def _synthetic(temperature: float, n: int = 20_000, classes: int = 5, seed: int = 0):
    """Labels drawn from softmax(z); the model reports z * temperature (over-confident for T > 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, size=(n, classes))
    p = cal.softmax(z)
    truth = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return z * temperature, truth


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_fit_recovers_a_known_temperature(temperature):
    logits, truth = _synthetic(temperature)
    fitted = cal.fit_temperature(logits, truth)
    assert fitted == pytest.approx(temperature, rel=0.05)


def test_fit_lowers_ece_and_nll_on_over_confident_logits():
    logits, truth = _synthetic(3.0)
    result = cal.fit_calibration(logits, truth)
    assert result.method == "temperature"
    assert result.ece_after < result.ece_before / 3
    assert result.nll_after < result.nll_before
    assert result.to_dict()["bins"] == cal.ECE_BINS == 15


def test_too_small_or_one_class_split_keeps_temperature_one():
    logits, truth = _synthetic(3.0, n=10)
    small = cal.fit_calibration(logits, truth)
    assert (small.method, small.temperature) == ("none", 1.0) and "10 validation images" in small.reason
    one = cal.fit_calibration(*_synthetic(3.0, n=100))
    assert one.method == "temperature"
    single = cal.fit_calibration(np.random.default_rng(1).normal(size=(50, 3)), np.zeros(50, dtype=np.int64))
    assert (single.method, single.temperature) == ("none", 1.0) and "one class" in single.reason


def test_ece_on_a_hand_made_case():
    # Two bins used: 0.95 confidence right 1 of 2 times, 0.55 right 2 of 2 times.
    p = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    truth = np.array([0, 1, 0, 0])
    assert cal.ece(p, truth) == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)


@pytest.mark.parametrize("bad", [{"temperature": 0}, {"temperature": "2"}, {"temperature": float("nan")}, []])
def test_stored_entries_are_checked(bad):
    with pytest.raises((ValueError, TypeError)):
        cal.Calibration.from_dict(bad)


# --------------------------------------------------------------------------- a trained model

TRAIN_DIGITS, HELD_OUT_DIGITS = 500, 400


def _write_digit_slice(root: Path, start: int, stop: int) -> Path:
    """Digits [start, stop) of the same seeded permutation `write_digits` uses: slices are disjoint."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))[start:stop]
    for index in order:
        folder = root / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:04d}.png"), (digits.images[index] * 255 / 16).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def over_confident_run(tmp_path_factory):
    """LeNet-5 on 300 of 500 digits (200 validate) for 40 epochs at a tenfold learning rate,
    without augmentation or early stopping: on purpose long and fast enough to drive the
    training loss to ~0 and the logits large, which makes a small network over-confident
    on images it has not seen (so calibration has something to fix and the ECE test can
    fail when it does not). Measured: T = 1.13 on the 201 validation images; on the 400
    held-out digits ECE 0.028 -> 0.024 and NLL 0.291 -> 0.275. Returns (run folder, held-out folder never used by training)."""
    from training import cli

    root = tmp_path_factory.mktemp("calibration")
    data_dir = _write_digit_slice(root / "train", 0, TRAIN_DIGITS)
    held_out = _write_digit_slice(root / "held_out", TRAIN_DIGITS, TRAIN_DIGITS + HELD_OUT_DIGITS)
    run_dir = root / "run"
    status = cli.main(
        [
            "train",
            str(data_dir),
            "--backbone",
            "lenet5",
            "--weights",
            "none",
            "--epochs",
            "40",
            "--early-stopping-patience",
            "100",
            "--batch-size",
            "16",
            "--learning-rate",
            "0.01",
            "--val-fraction",
            "0.4",
            "--augment",
            "none",
            "--seed",
            "3",
            "--out",
            str(run_dir),
        ]
    )
    assert status == 0
    return run_dir, held_out


def _held_out_logits(run_dir: Path, held_out: Path):
    from training.data import scan_class_folders
    from training.export import load_run
    from training.run_calibration import logits_of

    classifier, result, _ = load_run(run_dir)
    scanned = scan_class_folders(held_out, class_names=result["labels"])
    return logits_of(classifier, scanned.samples, int(result["image_size"]))


def test_run_records_its_calibration_and_it_helps_on_held_out_images(over_confident_run):
    run_dir, held_out = over_confident_run
    stored = json.loads((run_dir / "result.json").read_text())["calibration"]
    assert stored["method"] == "temperature", stored
    assert stored["temperature"] > 1.0  # over-confident, as the fixture made it
    assert set(stored) >= {"temperature", "ece_before", "ece_after", "nll_before", "nll_after", "images"}
    logits, truth = _held_out_logits(run_dir, held_out)
    assert len(truth) == HELD_OUT_DIGITS
    before, after = cal.softmax(logits), cal.softmax(logits / stored["temperature"])
    assert cal.ece(after, truth) < cal.ece(before, truth)
    assert cal.nll(after, truth) < cal.nll(before, truth)


def _onnx_outputs(path: Path, images: np.ndarray):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.run(["probabilities", "cam"], {"image": images})


def test_exported_probabilities_are_the_calibrated_softmax_and_the_cam_is_unchanged(over_confident_run, tmp_path):
    from convnet_common.model_contract import read_contract
    from convnet_common.onnx_file import inspect_model_file
    from training import cli
    from training.data import load_batch, scan_class_folders
    from training.export import load_run
    from training.model_builder import build_export_model
    from training.run_calibration import scoring_model

    run_dir, held_out = over_confident_run
    out = tmp_path / "model.onnx"
    assert cli.main(["export", str(run_dir), "--out", str(out)]) == 0
    classifier, result, _ = load_run(run_dir)
    temperature = result["calibration"]["temperature"]
    samples = scan_class_folders(held_out, class_names=result["labels"]).samples[:64]
    images, _ = load_batch(samples, int(result["image_size"]))
    session, (probabilities, cam) = _onnx_outputs(out, images)
    _, logits = scoring_model(classifier).predict(images.astype(np.float32), verbose=0)
    np.testing.assert_allclose(probabilities, cal.softmax(logits / temperature), atol=1e-4)
    assert np.max(np.abs(probabilities - cal.softmax(logits))) > 1e-3  # the temperature did something
    _, uncalibrated_cam = build_export_model(classifier).predict(images, verbose=0)
    np.testing.assert_allclose(cam, uncalibrated_cam, atol=1e-4 * max(1.0, float(np.abs(uncalibrated_cam).max())))
    # The metadata entry is result.json's, and the contract reader takes it.
    metadata = inspect_model_file(out).metadata
    assert json.loads(metadata["calibration"]) == result["calibration"]
    contract = read_contract(metadata, session.get_inputs(), session.get_outputs())
    read = contract.metadata.calibration
    assert read["temperature"] == pytest.approx(temperature) and read["method"] == "temperature"


def test_fp16_export_stays_calibrated(over_confident_run, tmp_path):
    from training import cli
    from training.data import load_batch, scan_class_folders

    run_dir, held_out = over_confident_run
    fp32, fp16 = tmp_path / "fp32.onnx", tmp_path / "fp16.onnx"
    assert cli.main(["export", str(run_dir), "--out", str(fp32)]) == 0
    assert cli.main(["export", str(run_dir), "--out", str(fp16), "--precision", "fp16"]) == 0
    labels = json.loads((run_dir / "result.json").read_text())["labels"]
    samples = scan_class_folders(held_out, class_names=labels).samples[:64]
    images, _ = load_batch(samples, 32)
    _, (p32, _) = _onnx_outputs(fp32, images)
    _, (p16, _) = _onnx_outputs(fp16, images)
    assert np.max(np.abs(p16 - p32)) < 1e-2  # fp16's rounding, far below what T changes


def test_an_old_run_gets_its_temperature_at_export(over_confident_run, tmp_path):
    """A run finished before calibration existed (no "calibration" in result.json): export
    fits T on its validation split, writes it into result.json and into the file."""
    from convnet_common.onnx_file import inspect_model_file
    from training import cli

    run_dir, _ = over_confident_run
    old = tmp_path / "old_run"
    shutil.copytree(run_dir, old)
    result = json.loads((old / "result.json").read_text())
    expected = result.pop("calibration")
    (old / "result.json").write_text(json.dumps(result))
    out = tmp_path / "old.onnx"
    assert cli.main(["export", str(old), "--out", str(out)]) == 0
    refit = json.loads((old / "result.json").read_text())["calibration"]
    assert refit["temperature"] == pytest.approx(expected["temperature"], rel=1e-3)
    assert json.loads(inspect_model_file(out).metadata["calibration"]) == refit


def test_evaluation_report_has_ece_nll_and_reliability(over_confident_run, tmp_path, capsys):
    from training import cli

    run_dir, held_out = over_confident_run
    report = tmp_path / "report"
    assert cli.main(["evaluate", str(run_dir), str(held_out), "--report", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())["calibration"]
    assert metrics["bins"] == 15 and metrics["temperature"] > 1.0
    assert metrics["ece_after"] < metrics["ece_before"]
    assert len(metrics["reliability_before"]) == len(metrics["reliability_after"]) == 15
    assert (report / "reliability.png").stat().st_size > 1000
    assert "ECE over 15 equal-width" in capsys.readouterr().out
    # The same numbers from the exported (calibrated) file: its "before" is recovered from log p.
    out = tmp_path / "model.onnx"
    assert cli.main(["export", str(run_dir), "--out", str(out)]) == 0
    onnx_report = tmp_path / "onnx_report"
    assert cli.main(["evaluate", str(out), str(held_out), "--report", str(onnx_report)]) == 0
    from_file = json.loads((onnx_report / "metrics.json").read_text())["calibration"]
    for key in ("ece_before", "ece_after", "nll_before", "nll_after"):
        assert from_file[key] == pytest.approx(metrics[key], abs=2e-3), key
    assert (run_dir / "report" / "reliability.png").is_file()  # the run's own validation report too


# --------------------------------------------------------------------------- files without it


def test_a_model_without_calibration_still_loads_and_evaluates(tmp_path):
    import onnx
    import onnxruntime as ort

    from convnet_common.model_contract import read_contract
    from training.model_source import load_model_to_score

    path = Path(__file__).resolve().parents[1] / "desktop" / "onnx_factory.py"
    spec = importlib.util.spec_from_file_location("calibration_onnx_factory", path)
    factory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(factory)

    path = tmp_path / "old.onnx"
    onnx.save(factory.build_model(), str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    assert "calibration" not in metadata
    contract = read_contract(metadata, session.get_inputs(), session.get_outputs())
    assert contract.metadata.calibration is None
    model = load_model_to_score(path, batch_size=2)
    assert (model.temperature, model.calibrated) == (None, False)
