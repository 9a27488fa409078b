"""The Train tab says when a finished run did no better than chance, as convnet-train does.

A random-weight MobileNetV2 on three classes once finished at 33.3% and the tab showed
"Best validation accuracy: 33.3%" like any other result. The verdict comes from the
run's result.json, written by training.chance (its real record is used here).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from desktop.core.run_history import MAX_CHANCE_TEXT, chance_warning
from desktop.qt.train_run_panel import RunPanel
from training import chance

FLAT = chance.assess([0, 1, 2] * 10, [1 / 3] * 8, [math.log(3)] * 8, [math.log(3)] * 8)
LEARNED = chance.assess([0, 1, 2] * 20, [0.4, 0.7, 0.9], [1.0, 0.6, 0.3], [1.0, 0.5, 0.2])
UNDECIDED = chance.assess([0, 1, 0, 1], [0.75])


def _run(tmp_path: Path, result: object) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "result.json").write_text(json.dumps(result))
    return run


def _panel(qtbot) -> RunPanel:
    panel = RunPanel()
    qtbot.addWidget(panel)
    return panel


@pytest.mark.parametrize("verdict", [FLAT, UNDECIDED], ids=["no-better", "cannot-tell"])
def test_a_run_that_did_not_beat_chance_says_so_first(qtbot, tmp_path: Path, verdict) -> None:
    assert verdict.beats_chance is not True
    run = _run(tmp_path, {"best_val_accuracy": 1 / 3, "chance": verdict.to_dict()})
    panel = _panel(qtbot)
    panel.show_results(str(run), {"epoch": 8, "val_accuracy": verdict.best_val_accuracy})
    first, second = panel.best_label.text().split("\n", 1)
    assert first == f"Warning: {verdict.sentence}"
    assert second.startswith("Best validation accuracy:")


def test_a_run_that_beat_chance_shows_its_accuracy_alone(qtbot, tmp_path: Path) -> None:
    assert LEARNED.beats_chance is True
    run = _run(tmp_path, {"best_val_accuracy": 0.9, "chance": LEARNED.to_dict()})
    panel = _panel(qtbot)
    panel.show_results(str(run), {"epoch": 3, "val_accuracy": 0.9})
    text = panel.best_label.text()
    assert text.startswith("Best validation accuracy:") and "(epoch 3)" in text
    assert "Warning" not in text and "\n" not in text


@pytest.mark.parametrize(
    "result",
    [
        {"best_val_accuracy": 0.9},  # a run from before the verdict
        {"chance": [1, 2]},
        {"chance": {"beats_chance": False, "sentence": 7}},
        {"chance": {"beats_chance": False, "sentence": "   "}},
        [1, 2, 3],
    ],
)
def test_old_or_odd_result_files_give_no_warning(tmp_path: Path, result: object) -> None:
    assert chance_warning(_run(tmp_path, result)) is None


def test_missing_run_and_long_sentences_are_handled(tmp_path: Path) -> None:
    assert chance_warning(None) is None and chance_warning(tmp_path / "absent") is None
    long = {"chance": {"beats_chance": False, "sentence": "word\n" * 1000}}
    warning = chance_warning(_run(tmp_path, long))
    assert warning is not None and len(warning) == MAX_CHANCE_TEXT and warning.endswith("…") and "\n" not in warning
