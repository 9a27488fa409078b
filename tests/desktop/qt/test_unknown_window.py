"""The unknown verdict in the window (issue 14): Classify, Batch, Camera, the threshold dialog, the model panel.

The model scores an image by its mean brightness (onnx_factory.build_unknown_model):
white is unknown at the file's 0.4 threshold, red and dark images are known.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnx_factory
import pytest
from PySide6.QtCore import Qt
from test_camera_core import FakeCapture

from desktop.core.settings import Settings
from desktop.qt.batch_model import COL_UNKNOWN, UNKNOWN_ONLY
from desktop.qt.batch_view import BatchView
from desktop.qt.camera_view import CameraView
from desktop.qt.controller import InferenceController
from desktop.qt.main_window import MainWindow
from desktop.qt.unknown_threshold_dialog import SLIDER_STEPS

WAIT_MS = 10_000
WHITE, RED, DARK = (255, 255, 255), (255, 0, 0), (20, 20, 20)
UNKNOWN_HEADLINE = "Unknown — unlike the 3 classes this model knows"


@pytest.fixture(scope="module")
def unknown_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_factory.save_unknown_model(tmp_path_factory.mktemp("unknown") / "unknown.onnx")


def _load(qtbot, controller: InferenceController, path: Path) -> None:
    with qtbot.waitSignal(controller.model_changed, timeout=WAIT_MS):
        controller.load_model(path)


def _show(qtbot, window: MainWindow, path: Path) -> None:
    view = window.classify_view
    window.show_image(path)
    qtbot.waitUntil(lambda: view.current is not None and view.current.path == path, timeout=WAIT_MS)


def test_classify_shows_unknown_with_grey_classes_and_the_score_on_hover(
    qtbot, window: MainWindow, unknown_model: Path, write_png
) -> None:
    _load(qtbot, window.controller, unknown_model)
    white = write_png("white.png", onnx_factory.solid_image(WHITE))
    red = write_png("red.png", onnx_factory.mostly(RED))
    panel = window.classify_view.predictions
    _show(qtbot, window, white)
    assert panel.message.text() == UNKNOWN_HEADLINE
    assert len(panel.displayed()) == 3  # the nearest classes, still listed
    assert all(row.greyed and not row.bar.isEnabled() for row in panel.rows if not row.isHidden())
    assert panel.selected_row is None
    assert "Unknown score 1" in panel.message.toolTip() and "threshold 0.4" in panel.message.toolTip()
    _show(qtbot, window, red)
    assert panel.message.text() == "Top class: red" and panel.selected_row == 0
    assert not any(row.greyed for row in panel.rows) and "not over the threshold 0.4" in panel.message.toolTip()
    facts = window.classify_view.model_panel.values
    assert facts["Unknown"].text().startswith("mean-brightness, threshold 0.4, accepts 95% of 50 validation images")
    assert facts["Calibration"].text() == "temperature, T = 1.7, ECE 0.081 → 0.023"
    assert window.named_actions["unknown_threshold"].isEnabled()


def test_threshold_dialog_shows_the_share_accepted_and_saves_per_model(
    qtbot, window: MainWindow, unknown_model: Path, write_png
) -> None:
    _load(qtbot, window.controller, unknown_model)
    red = write_png("red.png", onnx_factory.mostly(RED))
    _show(qtbot, window, red)
    model = window.controller.model
    dialog = window.classify_view.edit_unknown_threshold()
    assert dialog is not None and dialog.isVisible()
    assert dialog.share_text().startswith("Threshold 0.4: accepts 95.2% of the 50 validation images")
    dialog.slider.setValue(SLIDER_STEPS // 2)  # the middle of 0 .. 0.42
    assert dialog.share_label.text().startswith("Threshold 0.21: accepts 50.0%")
    dialog.slider.setValue(SLIDER_STEPS // 10)
    assert dialog.threshold() == pytest.approx(0.042)
    dialog._accept_value()  # OK
    assert model.unknown_threshold == pytest.approx(0.042)
    stored = Settings.load(window.settings.path).unknown_threshold(model.info.sha256)
    assert stored == pytest.approx(0.042)  # saved at once, by the file's SHA-256
    panel = window.classify_view.predictions
    qtbot.waitUntil(lambda: panel.message.text() == UNKNOWN_HEADLINE, timeout=WAIT_MS)  # re-judged, not re-run
    assert "yours; the file's is 0.4" in window.classify_view.model_panel.values["Unknown"].text()
    again = window.classify_view.edit_unknown_threshold()
    assert again.share_text().startswith("Threshold 0.042")
    again.reset_button.click()
    assert model.unknown_threshold == pytest.approx(0.4)
    assert Settings.load(window.settings.path).unknown_threshold(model.info.sha256) is None
    assert panel.message.text() == "Top class: red"


def test_saved_threshold_applies_when_the_model_loads(qtbot, unknown_model: Path, write_png) -> None:
    from desktop.core.model import file_sha256

    settings = Settings.load()
    settings.set_unknown_threshold(file_sha256(unknown_model), 0.05)
    settings.save()
    win = MainWindow(provider="cpu", settings=Settings.load())
    qtbot.addWidget(win)
    try:
        _load(qtbot, win.controller, unknown_model)
        assert win.controller.model.unknown_threshold == pytest.approx(0.05)
        _show(qtbot, win, write_png("red.png", onnx_factory.mostly(RED)))
        assert win.classify_view.predictions.message.text() == UNKNOWN_HEADLINE
    finally:
        win.close()


def test_plain_model_shows_no_verdict_anywhere(qtbot, window: MainWindow, colour_model: Path, write_png) -> None:
    _load(qtbot, window.controller, colour_model)
    _show(qtbot, window, write_png("white.png", onnx_factory.solid_image(WHITE)))
    panel = window.classify_view.predictions
    assert panel.message.text().startswith("Top class:") and panel.message.toolTip() == ""
    assert window.classify_view.model_panel.values["Unknown"].text() == "no unknown score"
    assert window.classify_view.model_panel.values["Calibration"].text() == "not recorded"
    assert not window.named_actions["unknown_threshold"].isEnabled()
    assert window.classify_view.edit_unknown_threshold() is None


@pytest.fixture
def batch(qtbot, tmp_path: Path):
    controller = InferenceController(provider="cpu")
    view = BatchView(controller, state_dir=tmp_path / "state")
    view.messages = []
    view.show_message = lambda title, text, error=False: view.messages.append((title, text))
    view.ask_resume = lambda folder, count: "resume"
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    yield controller, view
    view.shutdown()
    controller.shutdown()


def _folder(tmp_path: Path, write_png) -> Path:
    folder = tmp_path / "photos"
    write_png("white.png", onnx_factory.solid_image(WHITE), folder)
    write_png("red.png", onnx_factory.mostly(RED), folder)
    write_png("dark.png", onnx_factory.solid_image(DARK), folder)
    return folder


def _run(qtbot, view: BatchView, folder: Path) -> None:
    assert view.start_folder(folder)
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)


def test_batch_unknown_column_filter_export_and_sort(qtbot, batch, unknown_model: Path, tmp_path: Path, write_png):
    controller, view = batch
    _load(qtbot, controller, unknown_model)
    _run(qtbot, view, _folder(tmp_path, write_png))
    assert not view.table.isColumnHidden(COL_UNKNOWN)
    cells = {r.path.name: view.model.index(i, COL_UNKNOWN).data() for i, r in enumerate(view.model.results)}
    assert cells == {"white.png": "unknown", "red.png": "", "dark.png": ""}
    white_row = next(i for i, r in enumerate(view.model.results) if r.path.name == "white.png")
    assert "unknown score 1" in view.model.index(white_row, 1).data(Qt.ItemDataRole.ToolTipRole)
    view.class_combo.setCurrentText(UNKNOWN_ONLY)
    assert [r.path.name for r in view.proxy.visible_results()] == ["white.png"]
    assert view.export(tmp_path / "unknown.csv", "csv")
    (row,) = list(csv.DictReader((tmp_path / "unknown.csv").open()))
    assert row["unknown"] == "true" and float(row["unknown_score"]) == pytest.approx(1.0)
    view.class_combo.setCurrentText("All classes")
    assert view.export(tmp_path / "all.json", "json")
    items = json.loads((tmp_path / "all.json").read_text())["results"]
    assert sorted(i["unknown"] for i in items) == [False, False, True]
    controller.set_unknown_threshold(0.1)  # moved: rows judged again from their scores
    assert {r.path.name for r in view.model.results if r.unknown} == {"white.png", "red.png"}
    dest = tmp_path / "sorted"
    assert view.sort_into(dest, move=False)
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)
    assert sorted(p.name for p in (dest / "_unknown").iterdir()) == ["red.png", "white.png"]
    assert [p.name for p in dest.glob("*/dark.png")] == ["dark.png"] and not (dest / "_unknown" / "dark.png").exists()


def test_batch_with_plain_model_has_no_unknown_column_or_filter(qtbot, batch, colour_model: Path, tmp_path, write_png):
    controller, view = batch
    _load(qtbot, controller, colour_model)
    _run(qtbot, view, _folder(tmp_path, write_png))
    assert view.table.isColumnHidden(COL_UNKNOWN)
    assert view.class_combo.findText(UNKNOWN_ONLY) < 0
    assert all(r.unknown is None for r in view.model.results)


def test_camera_label_says_unknown_for_bright_frames(qtbot, unknown_model: Path) -> None:
    controller = InferenceController(provider="cpu")
    try:
        _load(qtbot, controller, unknown_model)
        frames = {"frame": np.full((64, 64, 3), 255, np.uint8)}
        view = CameraView(controller, capture_factory=lambda s: FakeCapture(frames["frame"], delay=0.02))
        qtbot.addWidget(view)
        view.show()
        view.start_source(0)
        qtbot.waitUntil(lambda: view.predictions.message.text() == UNKNOWN_HEADLINE, timeout=WAIT_MS)
        view.set_frozen(True)
        assert view.predictions.message.text().startswith("Frozen — unknown — unlike the 3 classes")
        view.set_frozen(False)
        view.stop()
        frames["frame"] = np.full((64, 64, 3), (0, 0, 200), np.uint8)  # BGR red: known
        view.start_source(0)
        qtbot.waitUntil(lambda: view.predictions.message.text() == "Top class: red", timeout=WAIT_MS)
        view.shutdown()
    finally:
        controller.shutdown()
