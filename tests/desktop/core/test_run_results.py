"""A run's report read back (desktop.core.run_results) from folders written here by hand, as
training writes them (training/evaluate.py, training/reports.py): metrics, the confusion
matrix and the images behind each cell, names neutralised for spreadsheets mapped back,
bad rows skipped and counted, huge files capped, and two runs compared."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from convnet_common.csv_cells import quoted_writer, spreadsheet_cell
from desktop.core import run_results
from desktop.core.run_export import default_export_path, find_export, read_export_check
from desktop.core.run_results import (
    compare_runs,
    read_predictions,
    read_run_results,
    real_cell,
)

HEADER = "path,true,predicted,confidence,correct,top_k\n"


def prediction_rows(rows: list[tuple[str, str, str, float]]) -> str:
    """predictions.csv text for (path, true, predicted, confidence) rows, written by training's rule."""
    buffer = io.StringIO()
    buffer.write(HEADER)
    writer = quoted_writer(buffer)
    for path, true, predicted, confidence in rows:
        top = [{"label": predicted, "probability": round(confidence, 6)}]
        cells = [path, true, predicted, f"{confidence:.6f}", "true" if true == predicted else "false", json.dumps(top)]
        writer.writerow([spreadsheet_cell(str(cell)) for cell in cells])
    return buffer.getvalue()


def metrics_for(labels: list[str], rows: list[tuple[str, str, str, float]]) -> dict:
    """metrics.json as training's EvaluationResult.to_dict() writes it, computed from the rows."""
    n = len(labels)
    matrix = [[0] * n for _ in range(n)]
    for _path, true, predicted, _c in rows:
        matrix[labels.index(true)][labels.index(predicted)] += 1
    per_class = []
    for i, name in enumerate(labels):
        support, chosen = sum(matrix[i]), sum(r[i] for r in matrix)
        p = matrix[i][i] / chosen if chosen else 0.0
        r = matrix[i][i] / support if support else None
        f = (2 * p * r / (p + r) if p + r else 0.0) if r is not None else None
        per_class.append({"name": name, "precision": p, "recall": r, "f1": f, "support": support})
    correct = sum(matrix[i][i] for i in range(n))
    return {
        "source": "run",
        "labels": labels,
        "images": len(rows),
        "accuracy": correct / len(rows),
        "top_k": 1,
        "top_k_accuracy": 1.0,
        "per_class": per_class,
        "macro": {"precision": 0.5, "recall": 0.5, "f1": 0.5},
        "weighted": {"precision": 0.5, "recall": 0.5, "f1": 0.5},
        "confusion_matrix": matrix,
        "misclassified": len(rows) - correct,
        "skipped": [],
    }


def write_report(
    run_dir: Path, labels: list[str], rows: list[tuple[str, str, str, float]], extra_csv: str = ""
) -> Path:
    """RUN_DIR/report/{metrics.json, predictions.csv} for `rows`; `extra_csv` is appended raw."""
    report = run_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    (report / "metrics.json").write_text(json.dumps(metrics_for(labels, rows)), encoding="utf-8")
    (report / "predictions.csv").write_text(prediction_rows(rows) + extra_csv, encoding="utf-8")
    return run_dir


LABELS = ["red", "green", "blue"]
ROWS = [
    ("/data/red/r0.png", "red", "red", 0.9),
    ("/data/red/r1.png", "red", "green", 0.6),
    ("/data/red/r2.png", "red", "green", 0.95),
    ("/data/green/g0.png", "green", "green", 0.8),
    ("/data/blue/b0.png", "blue", "blue", 0.7),
    ("/data/blue/b1.png", "blue", "red", 0.51),
]


def test_metrics_matrix_and_the_images_behind_each_cell(tmp_path: Path) -> None:
    results = read_run_results(write_report(tmp_path / "run", LABELS, ROWS))
    assert results is not None and results.notes == [] and results.bad_rows == 0
    assert results.labels == LABELS
    assert results.accuracy == pytest.approx(3 / 6) and results.images == 6
    assert results.matrix == [[1, 2, 0], [0, 1, 0], [1, 0, 1]]
    red = results.score("red")
    assert red.support == 3 and red.recall == pytest.approx(1 / 3) and red.precision == pytest.approx(1 / 2)
    assert results.macro_f1 == 0.5
    cell = results.cell_images("red", "green")
    assert [p.path for p in cell] == ["/data/red/r2.png", "/data/red/r1.png"]  # most confident first
    assert [p.path for p in results.misclassified] == ["/data/red/r2.png", "/data/red/r1.png", "/data/blue/b1.png"]
    assert results.predictions[0].top_k == (("red", 0.9),)


def test_names_neutralised_for_spreadsheets_are_mapped_back(tmp_path: Path) -> None:
    labels = ["-minus", "'quoted", "=sum"]
    rows = [
        ("=HYPERLINK(x).png", "-minus", "'quoted", 0.9),
        ("'already.png", "'quoted", "'quoted", 0.8),
        ("+plus.png", "=sum", "=sum", 0.7),
    ]
    results = read_run_results(write_report(tmp_path / "run", labels, rows))
    assert results.bad_rows == 0
    assert [p.path for p in results.predictions] == ["=HYPERLINK(x).png", "'already.png", "+plus.png"]
    assert results.cell_images("-minus", "'quoted")[0].path == "=HYPERLINK(x).png"
    assert all(real_cell(spreadsheet_cell(text)) == text for text in ("'x", "''y", "-1", "plain", "\tTab"))


def test_a_planted_bad_row_is_skipped_and_counted(tmp_path: Path) -> None:
    bad = (
        '"/data/red/x.png","red","green","not a number","false","[]"\n'
        '"/data/red/y.png","purple","green","0.5","false","[]"\n'  # unknown class
        '"/data/red/z.png","red","green","0.5","true","[]"\n'  # "correct" contradicts the classes
        '"only","three","cells"\n'
        '"/data/red/w.png","red","green","1.5","false","[]"\n'  # not a probability
        '"/data/red/ok.png","red","red","0.5","true","not json"\n'  # top_k unreadable: row kept
    )
    results = read_run_results(write_report(tmp_path / "run", LABELS, ROWS, bad))
    assert results.bad_rows == 5
    assert any("5 row(s)" in note for note in results.notes)
    assert results.predictions[-1].path == "/data/red/ok.png" and results.predictions[-1].top_k == ()
    assert results.matrix == [[1, 2, 0], [0, 1, 0], [1, 0, 1]]  # from metrics.json, not the rows


def test_huge_files_are_capped(tmp_path: Path, monkeypatch) -> None:
    run = write_report(tmp_path / "run", LABELS, ROWS * 200)
    monkeypatch.setattr(run_results, "MAX_PREDICTIONS_BYTES", 5_000)
    results = read_run_results(run)
    assert results.truncated and 0 < len(results.predictions) < 100
    assert any("very large" in note for note in results.notes)
    monkeypatch.setattr(run_results, "MAX_PREDICTIONS_BYTES", 64_000_000)
    monkeypatch.setattr(run_results, "MAX_PREDICTION_ROWS", 10)
    assert len(read_run_results(run).predictions) == 10
    # one enormous line without a newline: read in pieces, each a bad row, never all at once
    (run / "report" / "predictions.csv").write_text(HEADER + "x" * 1_000_000, encoding="utf-8")
    rows, bad, _ = read_predictions(run / "report" / "predictions.csv", LABELS)
    assert rows == [] and bad >= 1
    # a metrics.json far larger than any report (sparse): ignored, figures from the rows
    (run / "report" / "predictions.csv").write_text(prediction_rows(ROWS), encoding="utf-8")
    with open(run / "report" / "metrics.json", "r+b") as handle:
        handle.truncate(200_000_000)
    results = read_run_results(run)
    assert results.accuracy == pytest.approx(0.5) and sorted(results.labels) == sorted(LABELS)
    assert any("metrics.json could not be read" in note for note in results.notes)
    assert results.score("red").recall == pytest.approx(1 / 3)


def test_missing_report_parts(tmp_path: Path) -> None:
    assert read_run_results(tmp_path / "nothing") is None
    run = write_report(tmp_path / "run", LABELS, ROWS)
    (run / "report" / "predictions.csv").unlink()
    results = read_run_results(run)
    assert results.accuracy == pytest.approx(0.5) and results.predictions == []
    assert any("missing" in note for note in results.notes)
    (run / "report" / "metrics.json").write_text("[1, 2", encoding="utf-8")
    assert read_run_results(run) is None


def test_compare_runs(tmp_path: Path) -> None:
    a = read_run_results(write_report(tmp_path / "a", LABELS, ROWS))
    better = [(p, t, t, c) for p, t, _, c in ROWS]
    b = read_run_results(write_report(tmp_path / "b", LABELS + ["cyan"], better + [("/c.png", "cyan", "cyan", 0.9)]))
    comparison = compare_runs(a, b)
    assert comparison.accuracy_difference == pytest.approx(0.5)
    assert [c.name for c in comparison.classes] == ["red", "green", "blue", "cyan"]
    red = comparison.classes[0]
    assert red.difference("recall") == pytest.approx(2 / 3)
    cyan = comparison.classes[3]
    assert cyan.a is None and cyan.difference("f1") is None


def test_exports(tmp_path: Path, colour_model: Path) -> None:
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    assert find_export(run) is None
    assert default_export_path(run, "int8").name == "model-int8.onnx"
    shutil.copy(colour_model, default_export_path(run, "fp16"))
    assert find_export(run) == run / "model-fp16.onnx"
    check = read_export_check(run / "model-fp16.onnx")
    assert check.precision == "fp32" and check.agreement is None
    assert "fp32" in check.describe()


def test_the_agreement_an_export_recorded(tmp_path: Path) -> None:
    import onnx_factory

    record = {"precision": "int8", "check_images": 40, "top1_agreement": 0.975, "required_top1_agreement": 0.97}
    record["max_probability_difference"] = 0.03
    metadata = {**onnx_factory.full_metadata(LABELS, 16), "precision": "int8", "precision_check": json.dumps(record)}
    path = onnx_factory.save_model(tmp_path / "model-int8.onnx", metadata=metadata)
    check = read_export_check(path)
    assert (check.precision, check.agreement, check.required, check.images) == ("int8", 0.975, 0.97, 40)
    assert "97.50 %" in check.describe() and "40 images" in check.describe()
