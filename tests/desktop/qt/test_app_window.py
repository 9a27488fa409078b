"""The main window under pytest-qt: real drop events, model switching, overlay controls."""

from __future__ import annotations

from pathlib import Path

import onnx_factory
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from desktop.core.model import NOTICE_NO_METADATA
from desktop.qt.image_view import EMPTY_HINT
from desktop.qt.main_window import MainWindow

WAIT_MS = 10_000


def _load(qtbot, win: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(win.controller.model_changed, timeout=WAIT_MS):
        win.open_model(path)


def drop_files(widget, paths: list[Path]) -> None:
    """Deliver a real drag-enter + drop with file URLs, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = widget.rect().center()
    enter = QDragEnterEvent(
        QPoint(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, drop)
    assert drop.isAccepted()


def _top(win: MainWindow) -> str | None:
    shown = win.classify_view.predictions.displayed()
    return shown[0][0] if shown else None


def test_empty_state(window: MainWindow) -> None:
    assert window.classify_view.viewer.image_view.hint() == EMPTY_HINT
    assert window.classify_view.viewer.image_view.pixmap() is None
    assert "No model loaded" in window.classify_view.predictions.message.text()
    assert not window.notice_bar.isVisible()
    assert window.classify_view.viewer.controls.isHidden()  # no overlay controls without an image


def test_drop_classifies_and_lists_files(qtbot, window: MainWindow, colour_model: Path, write_png) -> None:
    _load(qtbot, window, colour_model)
    assert window.windowTitle().endswith("colours.onnx")
    assert window.provider_status.text() == "Provider: CPUExecutionProvider"
    assert window.classify_view.model_panel.values["Classes"].text().startswith("3: red, green, blue")
    assert window.classify_view.model_panel.values["Held-out accuracy"].text() == "97.0%"
    green = write_png("green.png", onnx_factory.mostly((0, 220, 0)))
    blue = write_png("blue.png", onnx_factory.mostly((0, 0, 220)))
    drop_files(window.classify_view.viewer.image_view, [green, blue])
    qtbot.waitUntil(lambda: _top(window) == "green", timeout=WAIT_MS)
    shown = window.classify_view.predictions.displayed()
    assert len(shown) == 3 and shown[0][1].endswith("%")
    assert window.classify_view.viewer.image_view.pixmap() is not None
    assert window.time_status.text().startswith("Inference:")
    assert window.classify_view.image_list.paths() == [green, blue]
    window.classify_view.image_list.select_path(blue)
    qtbot.waitUntil(lambda: _top(window) == "blue", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "blue" in window.classify_view.image_list.item(1).text(), timeout=WAIT_MS)


def test_unreadable_drop_shows_error_in_panel(qtbot, window: MainWindow, colour_model: Path, tmp_path: Path) -> None:
    _load(qtbot, window, colour_model)
    broken = tmp_path / "broken.png"
    broken.write_text("not a png")
    drop_files(window.classify_view.viewer.image_view, [broken])
    qtbot.waitUntil(lambda: "Could not classify" in window.classify_view.predictions.message.text(), timeout=WAIT_MS)
    assert window.classify_view.predictions.displayed() == []
    assert window.errors == []


def test_bad_model_keeps_current_one(qtbot, window: MainWindow, colour_model: Path, tmp_path: Path, write_png) -> None:
    _load(qtbot, window, colour_model)
    red = write_png("red.png", onnx_factory.mostly((220, 0, 0)))
    window.open_images([red])
    qtbot.waitUntil(lambda: _top(window) == "red", timeout=WAIT_MS)
    before = window.classify_view.predictions.displayed()
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(colour_model.read_bytes()[:200])
    with qtbot.waitSignal(window.controller.model_failed, timeout=WAIT_MS):
        window.open_model(bad)
    assert len(window.errors) == 1
    title, text = window.errors[0]
    assert title == "Could not open model" and "broken.onnx" in text and "Still using colours.onnx" in text
    assert window.controller.model.info.path == colour_model
    assert window.windowTitle().endswith("colours.onnx")
    assert window.classify_view.predictions.displayed() == before


def test_no_metadata_model_shows_notice_and_no_map(qtbot, window: MainWindow, plain_model: Path, write_png) -> None:
    _load(qtbot, window, plain_model)
    assert window.notice_bar.isVisible()
    assert NOTICE_NO_METADATA in window.notice_bar.text()
    window.open_images([write_png("g.png", onnx_factory.mostly((0, 220, 0)))])
    qtbot.waitUntil(lambda: _top(window) == "class 1", timeout=WAIT_MS)
    # No in-graph map: one is computed from forward passes instead (test_forward_map_view.py).
    qtbot.waitUntil(lambda: window.classify_view.viewer.current_cam() is not None, timeout=WAIT_MS)
    assert "forward passes" in window.classify_view.viewer.cam_caption.text()
    assert "approximate" in window.classify_view.viewer.cam_caption.text()


def test_overlay_controls_change_the_pixmap(qtbot, window: MainWindow, colour_model: Path, write_png) -> None:
    _load(qtbot, window, colour_model)
    assert window.notice_bar.isHidden()
    window.open_images([write_png("r.png", onnx_factory.mostly((220, 0, 0)))])
    qtbot.waitUntil(lambda: _top(window) == "red", timeout=WAIT_MS)
    view = window.classify_view.viewer.image_view
    assert (
        window.classify_view.viewer.overlay_checkbox.isEnabled()
        and window.classify_view.viewer.overlay_checkbox.isChecked()
    )
    with_map = view.pixmap().toImage()
    window.classify_view.viewer.opacity_slider.setValue(90)
    stronger = view.pixmap().toImage()
    assert stronger != with_map
    window.classify_view.viewer.overlay_checkbox.setChecked(False)
    plain = view.pixmap().toImage()
    assert plain != stronger and plain != with_map
    window.classify_view.viewer.overlay_checkbox.setChecked(True)
    assert view.pixmap().toImage() == stronger


def test_switching_models_reclassifies(
    qtbot, window: MainWindow, colour_model: Path, plain_model: Path, write_png
) -> None:
    _load(qtbot, window, colour_model)
    window.open_images([write_png("b.png", onnx_factory.mostly((0, 0, 220)))])
    qtbot.waitUntil(lambda: _top(window) == "blue", timeout=WAIT_MS)
    _load(qtbot, window, plain_model)
    qtbot.waitUntil(lambda: _top(window) == "class 2", timeout=WAIT_MS)
