"""`evaluate` on a LeNet run and on its ONNX export: same numbers, a complete report folder."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from training import reports
from training.data import DatasetError, Sample
from training.evaluate import EvaluationError, evaluate, evaluate_samples, format_evaluation

pytestmark = pytest.mark.slow

REPORT_FILES = {"confusion_matrix.png", "predictions.csv", "misclassified.png", "metrics.json", "reliability.png"}
CURVES = {"curves_loss.png", "curves_accuracy.png"}


@pytest.fixture(scope="module")
def lenet_onnx(lenet_run, tmp_path_factory):
    from training.export import export_run

    path = tmp_path_factory.mktemp("evaluate") / "digits.onnx"
    export_run(lenet_run, path)
    return path


def assert_valid_png(path):
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable image"
    assert image.shape[0] > 50 and image.shape[1] > 50
    assert image.std() > 1.0, f"{path} is blank"


def read_predictions(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def no_partial_files(folder):
    return not list(folder.glob(".*partial*"))


def test_run_and_onnx_give_the_same_scores_and_full_reports(lenet_run, lenet_onnx, digits_dir, tmp_path, monkeypatch):
    run_copy = tmp_path / "run"
    shutil.copytree(lenet_run, run_copy)
    own_report = {p.name: p.read_bytes() for p in (run_copy / "report").iterdir()}  # training's
    from_run = evaluate(run_copy, digits_dir)  # default report folder: RUN_DIR/evaluations/<data>
    monkeypatch.chdir(tmp_path)
    from_onnx = evaluate(lenet_onnx, digits_dir, top_k=3)  # default: ./report-<stem>

    assert from_run.report_dir == run_copy / "evaluations" / digits_dir.name
    assert {p.name: p.read_bytes() for p in (run_copy / "report").iterdir()} == own_report
    assert from_onnx.report_dir == tmp_path / "report-digits"
    assert from_run.images == from_onnx.images == 600
    assert from_run.accuracy == from_onnx.accuracy
    assert from_run.confusion_matrix == from_onnx.confusion_matrix
    assert from_run.accuracy > 0.5
    assert from_onnx.top_k == 3 and from_run.top_k == 5
    assert from_run.accuracy <= from_onnx.top_k_accuracy <= from_run.top_k_accuracy <= 1.0
    assert np.sum(from_run.confusion_matrix) == 600
    assert from_run.misclassified == 600 - np.trace(from_run.confusion_matrix)

    assert {p.name for p in from_run.report_dir.iterdir()} == REPORT_FILES | CURVES
    assert {p.name for p in from_onnx.report_dir.iterdir()} == REPORT_FILES  # no history for a bare .onnx
    for result in (from_run, from_onnx):
        folder = result.report_dir
        for png in folder.glob("*.png"):
            assert_valid_png(png)
        rows = read_predictions(folder / "predictions.csv")
        assert len(rows) == 600
        assert {row["path"] for row in rows} == {str(p) for p in digits_dir.rglob("*.png")}
        wrong = [row for row in rows if row["correct"] == "false"]
        assert len(wrong) == result.misclassified
        for row in rows[:20]:
            top = json.loads(row["top_k"])
            assert len(top) == result.top_k and top[0]["label"] == row["predicted"]
            assert abs(top[0]["probability"] - float(row["confidence"])) < 1e-5
            assert (row["true"] == row["predicted"]) == (row["correct"] == "true")
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["accuracy"] == result.accuracy and metrics["images"] == 600
        assert [c["name"] for c in metrics["per_class"]] == [str(d) for d in range(10)]
        assert no_partial_files(folder)

    text = format_evaluation(from_run)
    assert f"accuracy:        {from_run.accuracy:.4f}" in text
    assert "top-5 accuracy" in text and "macro avg" in text and "weighted avg" in text
    assert str(from_run.report_dir) in text


def test_unknown_class_folder_is_refused_by_name(lenet_onnx, digits_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(digits_dir / "3", data / "3")
    (data / "cat").mkdir()
    (data / "zebra").mkdir()
    with pytest.raises(EvaluationError, match=r"does not know: cat, zebra\. The model's classes are: 0, 1, 2") as error:
        evaluate(lenet_onnx, data, report_dir=tmp_path / "report")
    assert isinstance(error.value, DatasetError)  # so `convnet-train` reports it as a usage error
    assert not (tmp_path / "report").exists()


def test_missing_classes_and_unreadable_files(lenet_onnx, digits_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(digits_dir / "1", data / "1")
    shutil.copytree(digits_dir / "7", data / "7")
    (data / "7" / "broken.png").write_bytes(b"not a png")
    result = evaluate(lenet_onnx, data, report_dir=tmp_path / "report")

    assert result.images == len(list((digits_dir / "1").glob("*.png"))) + len(list((digits_dir / "7").glob("*.png")))
    assert [path for path, _ in result.skipped] == [str(data / "7" / "broken.png")]
    assert len(result.absent_classes) == 8 and "1" not in result.absent_classes
    for c in result.per_class:
        if c.support == 0:
            assert c.recall is None and c.f1 is None
        else:
            assert 0.0 <= c.recall <= 1.0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["skipped"][0]["path"].endswith("broken.png")
    text = format_evaluation(result)
    assert "skipped 1 unreadable file(s)" in text and "broken.png" in text
    assert "(no images in the data)" in text
    assert "averages are over the 2 classes present in the data" in text


def test_evaluate_samples_with_any_predict_function(digits_dir, tmp_path):
    """What the trainer does with its validation split: no DATA_DIR, no model file."""
    samples = [Sample(str(p), int(p.parent.name)) for p in sorted(digits_dir.rglob("*.png"))[:40]]
    labels = [str(d) for d in range(10)]

    def perfect(images):
        assert images.dtype == np.uint8 and images.shape[1:] == (16, 16, 3)
        batch = samples[len(samples_seen) : len(samples_seen) + len(images)]
        samples_seen.extend(batch)
        return np.eye(10, dtype=np.float32)[[s.label for s in batch]] * 0.9 + 0.01

    samples_seen: list[Sample] = []
    history = tmp_path / "history.csv"
    history.write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss,stage\n"
        "1,0.5,1.5,0.6,1.2,1\n2,0.7,1.0,0.7,0.9,1\n1,0.85,0.5,0.8,0.6,2\n2,0.9,0.35,0.85,0.55,2\n"
    )
    result = evaluate_samples(perfect, samples, labels, 16, tmp_path / "report", history_csv=history, batch_size=16)
    assert result.accuracy == 1.0 and result.misclassified == 0 and result.images == 40
    assert {p.name for p in (tmp_path / "report").iterdir()} == REPORT_FILES | CURVES
    for png in (tmp_path / "report").glob("*.png"):
        assert_valid_png(png)  # the misclassified sheet says there are none

    samples_seen.clear()
    quiet = evaluate_samples(perfect, samples, labels, 16, report_dir=None, top_k=1)
    assert quiet.report_dir is None and quiet.files == [] and quiet.top_k_accuracy == 1.0


def test_training_curves_need_a_history(tmp_path):
    assert reports.write_training_curves(None, tmp_path) == []
    assert reports.write_training_curves(tmp_path / "missing.csv", tmp_path) == []
    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n")
    assert reports.write_training_curves(empty, tmp_path / "out") == []
    plain = tmp_path / "history.csv"
    plain.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n1,0.3,2.0,0.7,1.5\n2,0.8,1.0,0.85,0.6\n")
    written = reports.write_training_curves(plain, tmp_path / "out")
    assert [p.name for p in written] == ["curves_loss.png", "curves_accuracy.png"]
    for path in written:
        assert_valid_png(path)
    assert no_partial_files(tmp_path / "out")


def test_bad_sources_are_refused(digits_dir, tmp_path):
    with pytest.raises(EvaluationError, match="not found"):
        evaluate(tmp_path / "nothing.onnx", digits_dir)
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(EvaluationError, match="not a finished training run"):
        evaluate(tmp_path / "empty_run", digits_dir)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(EvaluationError, match="not a loadable ONNX model"):
        evaluate(tmp_path / "junk.onnx", digits_dir)
