"""What training writes about strangers' names: predictions.csv cells follow the app's CSV
rule (convnet_common.csv_cells: formulas neutralised, every cell quoted so a lone CR
cannot split a row), and the terminal lines (`skipped PATH: REASON`, `convnet-train:
error: ...`) show control characters as escapes instead of acting on them."""

from __future__ import annotations

import csv

import cv2
import numpy as np

from training import cli, reports
from training.config import TrainConfig

HOSTILE = '=HYPERLINK("http://x")'


def test_predictions_csv_neutralises_formulas_and_quotes_a_lone_cr(tmp_path):
    rows = [
        {
            "path": HOSTILE,
            "true": "a\rb",
            "predicted": "@cmd",
            "confidence": 0.5,
            "correct": False,
            "top_k": [("@cmd", 0.5), ("a\rb", 0.5)],
        }
    ]
    path = reports.write_predictions_csv(tmp_path / "predictions.csv", rows)
    with open(path, newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == 1, "a carriage return split the row"
    row = read[0]
    assert row["path"] == "'" + HOSTILE and row["predicted"] == "'@cmd" and row["true"] == "a\rb"
    assert "\r" not in path.read_text(encoding="utf-8").replace('"a\rb"', "")  # the CR only inside quotes


def test_desktop_and_training_share_one_cell_rule():
    from convnet_common import csv_cells
    from desktop.core import results_io

    assert results_io.spreadsheet_cell is csv_cells.spreadsheet_cell


def test_skipped_lines_show_control_characters_as_escapes(tmp_path, capsys):
    from training.trainer import Trainer

    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(tmp_path / "data" / name / f"{i}.png"), np.full((16, 16, 3), 9, np.uint8))
    (tmp_path / "data" / "a" / "evil\x1b]0;owned\x07.png").write_bytes(b"not an image")
    config = TrainConfig(
        data_dir=str(tmp_path / "data"),
        out=str(tmp_path / "run"),
        backbone="lenet5",
        weights="none",
        epochs=1,
        augment="none",
        tensorboard=False,
    )
    Trainer(config)._prepare_data()
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "evil\\x1b]0;owned\\x07.png" in err


def test_error_lines_show_control_characters_as_escapes(tmp_path, capsys):
    run_dir = tmp_path / "run\x1b[31m\nconvnet-train: fine"
    assert cli.main(["train", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and err.count("\n") == 1, err
    assert "run\\x1b[31m\\nconvnet-train: fine" in err
