"""`convnet-train evaluate`'s printed table with class names and paths from strangers.

Class names come from a model's metadata and folder names, paths from the data folder:
printed raw, an escape sequence colours the table or retitles the terminal, a newline
splits a row. The table shows them escaped (convnet_common.terminal_text) and stays aligned.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training import evaluate
from training.evaluate import ClassMetrics, EvaluationError, EvaluationResult, format_evaluation

COLOUR, TITLE, RLO = "\x1b[31m", "\x1b]0;owned\x07", "\u202e"
NAMES = [f"{COLOUR}red", f"two\nlines{TITLE}", f"{RLO}tac", "plain"]


def _result(tmp_path: Path) -> EvaluationResult:
    per_class = [ClassMetrics(name, 0.5, 0.5, 0.5, 2) for name in NAMES]
    averages = {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    return EvaluationResult(
        source=str(tmp_path / f"model{TITLE}.onnx"),
        data_dir=str(tmp_path / f"data{COLOUR}"),
        labels=NAMES,
        images=8,
        accuracy=0.5,
        top_k=3,
        top_k_accuracy=0.75,
        per_class=per_class,
        macro=averages,
        weighted=averages,
        confusion_matrix=[[2] * len(NAMES)] * len(NAMES),
        misclassified=4,
        skipped=[(str(tmp_path / f"bad{TITLE}\n.png"), f"not a readable image{COLOUR}")],
        report_dir=tmp_path / f"report{RLO}",
    )


def test_the_printed_evaluation_shows_names_escaped_and_stays_aligned(tmp_path: Path) -> None:
    text = format_evaluation(_result(tmp_path))
    lines = text.split("\n")
    for line in lines:
        assert line.isprintable(), repr(line)
    header = next(line for line in lines if line.startswith("class"))
    rows = [line for line in lines if line.endswith(" 2")]  # the per-class rows: support 2
    assert len(rows) == len(NAMES)
    assert {len(row) for row in rows} == {len(header)}  # every column where the header puts it
    assert sum(line.startswith("  ") and "bad" in line for line in lines) == 1  # the skipped file, one line


def test_unknown_class_folders_are_named_escaped_on_one_line(tmp_path: Path) -> None:
    data = tmp_path / f"data{TITLE}"
    for name in ("plain", f"cat{COLOUR}", "new\nline"):
        (data / name).mkdir(parents=True)
    with pytest.raises(EvaluationError) as caught:
        evaluate._check_class_folders(data, NAMES)
    assert str(caught.value).isprintable()
