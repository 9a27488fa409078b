"""convnet-classify on a labelled folder: the accuracy line and the JSON's true classes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from test_batch_engine import make_folder
from test_labelled_folders import make_labelled_folder

from desktop.classify_cli import main
from desktop.core.results_io import CSV_COLUMNS, TRUE_LABEL_COLUMN


def test_labelled_folder_reports_accuracy(colour_model: Path, tmp_path: Path, write_png, capsys) -> None:
    folder = make_labelled_folder(tmp_path / "photos", write_png)
    out = tmp_path / "r.json"
    code = main([str(folder), "--model", str(colour_model), "--provider", "cpu", "--json", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1  # the planted broken file
    accuracy_line = next(line for line in err if "Accuracy" in line)
    assert "80.0 %" in accuracy_line and "4 of 5" in accuracy_line and "2 not in a class folder" in accuracy_line
    assert err[-1].startswith("classified ")  # the rate stays the last line
    document = json.loads(out.read_text())
    assert {Path(r["path"]).name: r["true_label"] for r in document["results"]}["c.png"] == "red"
    assert document["accuracy"]["correct"] == 4


def test_unlabelled_folder_has_no_accuracy_line(colour_model: Path, tmp_path: Path, write_png, capsys) -> None:
    folder = make_folder(tmp_path / "images", write_png)
    main([str(folder), "--model", str(colour_model), "--provider", "cpu"])
    assert "Accuracy" not in capsys.readouterr().err


def test_labelled_folder_csv_has_the_true_label_column(colour_model: Path, tmp_path: Path, write_png, capsys) -> None:
    """The streamed CSV has the same columns as the Batch tab's export of a labelled folder."""
    folder = make_labelled_folder(tmp_path / "photos", write_png)
    main([str(folder), "--model", str(colour_model), "--provider", "cpu"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == [*CSV_COLUMNS, TRUE_LABEL_COLUMN]
    assert {Path(r["path"]).name: r[TRUE_LABEL_COLUMN] for r in rows}["c.png"] == "red"
