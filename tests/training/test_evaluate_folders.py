"""Where `convnet-train evaluate` writes its report: a new folder every time, and never over
the run's own validation report (RUN_DIR/report, which training wrote).

The model is replaced by a stand-in predict function (`load_model_to_score` is patched), so these
tests need no trained network; tests/training/test_evaluate.py covers real runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import cli
from training import evaluate as evaluate_module
from training.evaluate import EvaluationError, evaluate
from training.model_source import ModelToScore

LABELS = ["dark", "light"]


def _data(root: Path) -> Path:
    for label, value in (("dark", 20), ("light", 230)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(root / label / f"{i}.png"), np.full((10, 10, 3), value + i, np.uint8))
    return root


@pytest.fixture
def run_dir(tmp_path, monkeypatch) -> Path:
    """A run folder whose own report exists, and a model that calls bright images 'light'."""
    run = tmp_path / "runs" / "pets"
    (run / "report").mkdir(parents=True)
    (run / "report" / "metrics.json").write_text('{"accuracy": 0.25, "written_by": "training"}')

    def predict(images: np.ndarray) -> np.ndarray:
        light = images.reshape(len(images), -1).mean(axis=1) > 127
        return np.stack([~light, light], axis=1).astype(np.float32) * 0.8 + 0.1

    def load_model(source, batch_size=64):
        source = Path(source)
        default = source / "report" if source.is_dir() else Path.cwd() / f"report-{source.stem}"
        return ModelToScore(predict, LABELS, (8, 8), None, default)

    monkeypatch.setattr(evaluate_module, "load_model_to_score", load_model)
    return run


def _own_report(run: Path) -> bytes:
    return (run / "report" / "metrics.json").read_bytes()


def test_evaluating_a_run_on_other_data_keeps_its_own_report(run_dir, tmp_path):
    before = _own_report(run_dir)
    data = _data(tmp_path / "holiday-photos")
    first = evaluate(run_dir, data)
    second = evaluate(run_dir, data)
    assert first.report_dir == run_dir / "evaluations" / data.name
    assert second.report_dir == run_dir / "evaluations" / f"{data.name}-2"
    assert _own_report(run_dir) == before
    assert sorted(p.name for p in (run_dir / "report").iterdir()) == ["metrics.json"]
    for result in (first, second):
        metrics = json.loads((result.report_dir / "metrics.json").read_text())
        assert metrics["accuracy"] == result.accuracy == 1.0
        assert metrics["data_dir"] == str(data)


def test_an_explicit_report_folder_is_used_but_never_the_runs_own(run_dir, tmp_path):
    data = _data(tmp_path / "data")
    chosen = tmp_path / "my-report"
    assert evaluate(run_dir, data, report_dir=chosen).report_dir == chosen
    assert (chosen / "metrics.json").is_file()
    before = _own_report(run_dir)
    with pytest.raises(EvaluationError, match="own validation report"):
        evaluate(run_dir, data, report_dir=run_dir / "report")
    with pytest.raises(EvaluationError, match="own validation report"):
        evaluate(run_dir, data, report_dir=run_dir / "evaluations" / ".." / "report")
    assert _own_report(run_dir) == before


def test_an_onnx_model_gets_a_new_folder_in_the_working_directory(run_dir, tmp_path, monkeypatch):
    data = _data(tmp_path / "data")
    model = tmp_path / "digits.onnx"
    model.write_bytes(b"stand-in")
    monkeypatch.chdir(tmp_path)
    assert evaluate(model, data).report_dir == tmp_path / "report-digits"
    assert evaluate(model, data).report_dir == tmp_path / "report-digits-2"


def test_a_failed_evaluation_leaves_no_empty_folder(run_dir, tmp_path, monkeypatch):
    def broken(images):
        raise RuntimeError("the model fell over")

    loaded = evaluate_module.load_model_to_score(run_dir)
    monkeypatch.setattr(
        evaluate_module,
        "load_model_to_score",
        lambda source, batch_size=64: ModelToScore(
            broken, loaded.labels, loaded.image_size, None, loaded.default_report_dir
        ),
    )
    with pytest.raises(RuntimeError, match="fell over"):
        evaluate(run_dir, _data(tmp_path / "data"))
    assert list((run_dir / "evaluations").iterdir()) == []


def test_the_command_line_says_where_the_report_went(run_dir, tmp_path, capsys):
    data = _data(tmp_path / "test-photos")
    assert cli.main(["evaluate", str(run_dir), str(data)]) == 0
    out = capsys.readouterr().out
    assert f"report: {run_dir / 'evaluations' / 'test-photos'}" in out
    assert cli.main(["evaluate", str(run_dir), str(data), "--report", str(run_dir / "report")]) == 2
    assert "own validation report" in capsys.readouterr().err
