"""The whole loop in the window with the REAL convnet-train: gather, train, inspect, fix, retrain, use.

One test, in the order a person works: choose a dataset folder (a planted unreadable file
and the same picture in two classes are reported), start a LeNet-5 run, receive live
epochs, stop it, resume it to the end, see its results, move one image to another class
(on disk; undo puts it back), retrain, export the model (fp32, to the run folder) and
classify a picture with it in the Classify tab. Only `find_launcher` is replaced, to run
`python -m training.cli` from this interpreter; everything else is the app's own code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from shapes_dataset import SHAPES, draw, write_shapes

from desktop.core.trainer_launcher import Launcher
from desktop.qt import train_view
from desktop.qt.classify_view import ClassifyView
from desktop.qt.main_window import MainWindow
from desktop.qt.train_view import TrainView

pytestmark = pytest.mark.slow
RUN_MS = 300_000
EPOCHS = 20


def wait_for_end(qtbot, view: TrainView) -> None:
    qtbot.waitUntil(lambda: view.process is None, timeout=RUN_MS)


def test_gather_train_stop_resume_fix_retrain_export_and_classify(
    qtbot, window: MainWindow, tmp_path: Path, monkeypatch
):
    pytest.importorskip("tensorflow")
    launcher = Launcher((sys.executable, "-m", "training.cli"), "this Python", "this-python")
    monkeypatch.setattr(train_view, "find_launcher", lambda: launcher)
    view = window.view(TrainView)
    view.ask_stop_and_close = lambda: True  # a failing test must not leave a modal question at teardown
    window.show_tab(view)

    # gather: the folder, its counts, the planted problems
    data = write_shapes(tmp_path / "shapes")
    view.dataset_panel.set_dataset(data)
    qtbot.waitUntil(lambda: view.dataset_panel.current_scan() is not None, timeout=30_000)
    assert view.dataset_panel.class_counts() == {"circle": 16, "square": 16, "triangle": 17}
    warnings = "\n".join(view.dataset_panel.warning_texts())
    assert "broken.png" in warnings and "copied-square.png" in warnings, warnings

    # train: LeNet-5 from scratch, live epochs, then Stop
    qtbot.waitUntil(lambda: "lenet5" in view.settings_panel.backbones, timeout=60_000)
    view.settings_panel.select_backbone("lenet5")
    # 20 epochs: LeNet-5 on 49 decoded-once images runs an epoch in a fraction of a second,
    # and Stop must land mid-run even on a loaded machine.
    view.settings_panel.set_advanced({"epochs": EPOCHS, "batch_size": 8, "seed": 1})
    qtbot.waitUntil(lambda: view.run_panel.start_button.isEnabled(), timeout=20_000)
    view.run_panel.start_button.click()
    qtbot.waitUntil(lambda: view.progress is not None and len(view.progress.epochs) >= 1, timeout=RUN_MS)
    assert view.progress.counts == {"circle": 16, "square": 16, "triangle": 17}
    assert any("broken.png" in str(item) for item in view.progress.skipped)
    view.run_panel.stop_button.click()
    wait_for_end(qtbot, view)
    assert view.progress.state == "stopped", (view.progress.error, view.progress.stderr_tail)
    stopped_at = len(view.progress.epochs)
    assert 1 <= stopped_at < EPOCHS and view.run_panel.resume_button.isEnabled()

    # resume to the end: the curves carry on from the saved epochs
    view.run_panel.resume_button.click()
    wait_for_end(qtbot, view)
    assert view.progress.state == "done", (view.progress.error, view.progress.stderr_tail)
    xs, _ = view.run_panel.curves.points("val_accuracy")
    # every epoch once, from 1, past the stop (early stopping may end it before EPOCHS)
    assert xs == [float(epoch) for epoch in range(1, len(xs) + 1)] and stopped_at < len(xs) <= EPOCHS
    first_run = Path(view.progress.run_dir)

    # inspect: the run's results (validation split)
    panel = view.run_panel.results_panel
    qtbot.waitUntil(lambda: panel.results is not None and panel.run_dir == first_run, timeout=30_000)
    assert panel.scores.rowCount() == 3
    wrong = panel.results.misclassified
    row = wrong[0] if wrong else panel.results.predictions[0]
    target = next(shape for shape in SHAPES if shape != row.true)
    image = Path(row.path)
    assert image.is_file()

    # fix: move one image to another class on disk, undo puts it back
    gallery = panel.gallery
    gallery.show_images([row], "one image")
    gallery.select(row.path)
    gallery.move_selected(target)
    moved = data / target / image.name
    assert moved.is_file() and not image.exists()
    gallery.undo_last()
    assert image.is_file() and not moved.exists()

    # retrain with the same settings: a second, finished run
    panel.retrain_button.click()
    qtbot.waitUntil(lambda: view.process is not None, timeout=10_000)
    wait_for_end(qtbot, view)
    assert view.progress.state == "done", (view.progress.error, view.progress.stderr_tail)
    second_run = Path(view.progress.run_dir)
    assert second_run != first_run and first_run.is_dir()
    qtbot.waitUntil(lambda: len(view.run_panel.runs) == 2, timeout=30_000)

    # use it: export fp32 into the run folder, open it in Classify, classify a picture
    qtbot.waitUntil(lambda: panel.run_dir == second_run, timeout=30_000)
    box = panel.export_box
    box.choose_path = lambda default: str(default)
    box.precision.setCurrentIndex(box.precision.findData("fp32"))
    box.export_button.click()
    qtbot.waitUntil(lambda: box.process is None, timeout=RUN_MS)
    exported = second_run / "model.onnx"
    assert exported.is_file() and box.model_path == exported, box.status.text()
    box.open_button.click()
    qtbot.waitUntil(
        lambda: window.controller.model is not None and window.controller.model.info.path == exported, timeout=60_000
    )
    assert sorted(window.controller.model.info.labels) == list(SHAPES)
    classify = window.view(ClassifyView)
    assert window.tabs.currentWidget() is classify
    picture = tmp_path / "new-square.png"
    cv2.imwrite(str(picture), draw("square", np.random.default_rng(99)))
    classify.open_images([picture])
    qtbot.waitUntil(lambda: classify.predictions.message.text().startswith("Top class:"), timeout=30_000)
    assert classify.predictions.message.text().split(": ", 1)[1] in SHAPES
