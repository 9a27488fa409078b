"""The Train tab's results on a hand-made run folder: metrics, the confusion matrix and the
images behind a cell, activation maps from the run's exported model, fixing a wrong label
(move, undo, exclude) on disk, two runs compared, and export with a FAKE convnet-train
followed by "Open in Classify" loading the file as the window's model.

The dataset is solid-colour PNGs in red/green/blue class folders and the model is
onnx_factory's colour model (labels red/green/blue, with activation maps), so the
predictions written into the report are what that model really says.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import cv2
import onnx_factory
import pytest
from test_run_results import write_report

from desktop.core.dataset_edits import excluded_folder
from desktop.core.trainer_launcher import Launcher
from desktop.qt import train_view
from desktop.qt.classify_view import ClassifyView
from desktop.qt.main_window import MainWindow
from desktop.qt.train_view import TrainView

LABELS = onnx_factory.COLOUR_LABELS
COLOURS = {"red": (230, 20, 20), "green": (20, 230, 20), "blue": (20, 20, 230)}

FAKE_EXPORT = textwrap.dedent(
    """
    import shutil, sys
    args = sys.argv[1:]
    if args[0] != "export":
        sys.exit(0)
    out = next(a.split("=", 1)[1] for a in args if a.startswith("--out="))
    print("fake convnet-train: exporting", file=sys.stderr, flush=True)
    shutil.copyfile(sys.argv[0] + ".onnx", out)
    print(f"exported {out}", file=sys.stderr, flush=True)
    """
)


def write_dataset(root: Path) -> Path:
    """Three solid-colour images per class, and one green image filed under red (a wrong label)."""
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for n in range(3):
            image = onnx_factory.solid_image(colour)
            cv2.imwrite(str(root / name / f"{name}{n}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    image = onnx_factory.solid_image(COLOURS["green"])
    cv2.imwrite(str(root / "red" / "leaf.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root


def write_run(runs: Path, name: str, data: Path, model: Path | None, wrong: bool = True) -> Path:
    """A finished run over `data` with its report; `model` is copied in as RUN_DIR/model.onnx."""
    run = runs / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("backbone: factory\n")
    rows = [(str(data / c / f"{c}{n}.png"), c, c, 0.9) for c in LABELS for n in range(3)]
    rows.append((str(data / "red" / "leaf.png"), "red", "green" if wrong else "red", 0.97))
    result = {"backbone": "factory", "best_val_accuracy": 0.9, "best_epoch": 1, "epochs": 1, "data_dir": str(data)}
    (run / "result.json").write_text(json.dumps(result))
    write_report(run, LABELS, rows)
    if model is not None:
        shutil.copyfile(model, run / "model.onnx")
    return run


@pytest.fixture
def exported_model(tmp_path: Path) -> Path:
    """What the fake export writes: the colour model as an fp16 export with its agreement check."""
    record = {"precision": "fp16", "check_images": 10, "top1_agreement": 1.0, "required_top1_agreement": 0.99}
    metadata = {**onnx_factory.full_metadata(LABELS, 16), "precision": "fp16", "precision_check": json.dumps(record)}
    return onnx_factory.save_model(tmp_path / "made.onnx", metadata=metadata)


@pytest.fixture
def tab(window: MainWindow, tmp_path: Path, monkeypatch, exported_model: Path) -> TrainView:
    script = tmp_path / "fake_export.py"
    script.write_text(FAKE_EXPORT, encoding="utf-8")
    shutil.copyfile(exported_model, str(script) + ".onnx")
    launcher = Launcher((sys.executable, str(script)), "a fake convnet-train export", "path")
    monkeypatch.setattr(train_view, "find_launcher", lambda: launcher)
    view = window.view(TrainView)
    view.ask_stop_and_close = lambda: True
    window.show_tab(view)
    return view


def test_results_fixes_export_and_open_in_classify(qtbot, window: MainWindow, tab: TrainView, tmp_path, colour_model):
    data = write_dataset(tmp_path / "colours")
    run = write_run(tmp_path / "colours-runs", "2026-01-02-factory", data, colour_model)
    other = write_run(tmp_path / "colours-runs", "2026-01-01-factory", data, None, wrong=False)
    qtbot.waitUntil(lambda: tab.launcher is not None, timeout=15_000)
    tab.dataset_panel.set_dataset(data)
    qtbot.waitUntil(lambda: len(tab.run_panel.runs) == 2, timeout=15_000)
    panel = tab.run_panel.results_panel

    tab.run_panel.select_runs([run.name])
    qtbot.waitUntil(lambda: panel.results is not None, timeout=15_000)
    assert "validation accuracy 90.0 %" in panel.summary.text() and "1 misclassified" in panel.summary.text()
    assert panel.scores.rowCount() == 3
    assert panel.scores.index(0, 0).data() == "red" and panel.scores.index(0, 2).data() == "75.0 %"  # recall
    assert panel.confusion.index(0, 1).data() == "1"  # red taken for green

    # the cell opens its image, with the activation map from RUN_DIR/model.onnx
    panel.open_cell(panel.confusion.index(0, 1))
    gallery = panel.gallery
    assert gallery.list.count() == 1 and "leaf.png" in gallery.list.item(0).text()
    assert "red → green" in gallery.list.item(0).text()
    qtbot.waitUntil(lambda: gallery.maps_drawn == 1, timeout=30_000)
    assert not gallery.list.item(0).icon().isNull()
    assert "Activation maps" in gallery.maps_label.text()

    # move the wrong label to its class, undo, then exclude it
    gallery.select(str(data / "red" / "leaf.png"))
    assert gallery.move_button.isEnabled()
    gallery.move_selected("green")
    assert (data / "green" / "leaf.png").is_file() and not (data / "red" / "leaf.png").exists()
    assert "Moved leaf.png to class green" in gallery.status.text()
    assert "now in green" in gallery.list.item(0).text()
    gallery.undo_last()
    assert (data / "red" / "leaf.png").is_file() and not (data / "green" / "leaf.png").exists()
    assert gallery.status.text().startswith("Undo: undone: moved")
    gallery.select(str(data / "red" / "leaf.png"))
    gallery.exclude_selected()
    assert (excluded_folder(data) / "red" / "leaf.png").is_file()
    assert "(excluded)" in gallery.list.item(0).text() and "Excluded leaf.png" in gallery.status.text()
    gallery.undo_last()
    assert (data / "red" / "leaf.png").is_file()

    with qtbot.waitSignal(panel.retrain_clicked, timeout=1000):
        panel.retrain_button.click()

    # export (fp16, to the default name in the run folder) with the fake, then open it in Classify
    box = panel.export_box
    box.choose_path = lambda default: str(default)
    box.precision.setCurrentIndex(box.precision.findData("fp16"))
    assert box.export_button.isEnabled()
    box.export_button.click()
    assert box.process is not None and "--precision=fp16" in box.process.argv
    qtbot.waitUntil(lambda: box.process is None, timeout=20_000)
    out = run / "model-fp16.onnx"
    assert out.is_file() and box.model_path == out
    qtbot.waitUntil(lambda: "top-1 agreement with fp32 100.00 %" in box.status.text(), timeout=10_000)
    box.open_button.click()
    qtbot.waitUntil(lambda: window.controller.model is not None, timeout=30_000)
    assert window.controller.model.info.path == out
    assert window.tabs.currentWidget() is window.view(ClassifyView)

    # two runs: their metrics side by side
    window.show_tab(tab)
    tab.run_panel.select_runs([run.name, other.name])
    qtbot.waitUntil(lambda: panel.compare.rowCount() > 0, timeout=15_000)
    rows = {panel.compare.index(r, 0).data(): r for r in range(panel.compare.rowCount())}
    accuracy = rows["Accuracy"]
    assert {panel.compare.index(accuracy, c).data() for c in (1, 2)} == {"90.0 %", "100.0 %"}
    assert panel.compare.index(accuracy, 3).data() in ("+10.0", "−10.0")
    assert "red: recall" in rows


def test_no_export_says_how_to_get_maps_and_a_failed_export_says_why(qtbot, tab: TrainView, tmp_path: Path):
    data = write_dataset(tmp_path / "colours")
    run = write_run(tmp_path / "colours-runs", "2026-01-02-factory", data, None)
    qtbot.waitUntil(lambda: tab.launcher is not None, timeout=15_000)
    panel = tab.run_panel.results_panel
    panel.show_run(run)
    qtbot.waitUntil(lambda: panel.results is not None, timeout=15_000)
    assert "Export the model to see activation maps" in panel.gallery.maps_label.text()
    assert not panel.export_box.open_button.isEnabled()
    assert panel.gallery.list.count() == 1  # the misclassified image, by default
    box = panel.export_box
    box.choose_path = lambda default: str(tmp_path / "no-such-folder" / "x.onnx")
    box.export_button.click()
    qtbot.waitUntil(lambda: box.process is None, timeout=20_000)
    assert box.status.text().startswith("The export failed") and box.model_path is None
