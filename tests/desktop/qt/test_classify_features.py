"""Classify tab features: per-class maps, colour maps, saving overlays, paste, model info."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx_factory
import shiboken6
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QGuiApplication

from desktop.qt.clipboard import qimage_to_rgb
from desktop.qt.imageconv import rgb_to_qimage
from desktop.qt.main_window import MainWindow
from desktop.qt.predictions_panel import top_indices
from desktop.qt.viewer import overlay_file_name

WAIT_MS = 10_000


def _load(qtbot, win: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(win.controller.model_changed, timeout=WAIT_MS):
        win.open_model(path)


def _classified(qtbot, win: MainWindow, top: str) -> None:
    qtbot.waitUntil(
        lambda: (
            bool(win.classify_view.predictions.displayed()) and win.classify_view.predictions.displayed()[0][0] == top
        ),
        timeout=WAIT_MS,
    )


def test_clicking_a_class_shows_its_map(qtbot, window: MainWindow, colour_model: Path, write_png) -> None:
    _load(qtbot, window, colour_model)
    window.open_images([write_png("r.png", onnx_factory.mostly((220, 0, 0)))])
    _classified(qtbot, window, "red")
    prediction = window.classify_view.current
    order = top_indices(prediction)
    assert window.classify_view.predictions.selected_row == 0
    np.testing.assert_array_equal(window.classify_view.viewer.current_cam(), prediction.cam[..., order[0]])
    top_pixmap = window.classify_view.viewer.image_view.pixmap().toImage()
    assert "red" in window.classify_view.viewer.cam_caption.text()

    second_label = window.classify_view.predictions.displayed()[1][0]
    qtbot.mouseClick(window.classify_view.predictions.rows[1], Qt.MouseButton.LeftButton)
    assert window.classify_view.predictions.selected_row == 1
    assert window.classify_view.viewer.class_index == order[1]
    np.testing.assert_array_equal(window.classify_view.viewer.current_cam(), prediction.cam[..., order[1]])
    assert not np.array_equal(prediction.cam[..., order[0]], prediction.cam[..., order[1]])
    assert window.classify_view.viewer.image_view.pixmap().toImage() != top_pixmap
    assert second_label in window.classify_view.viewer.cam_caption.text()
    assert (
        window.classify_view.predictions.rows[1].backgroundRole()
        == window.classify_view.predictions.rows[1].palette().ColorRole.Highlight
    )
    assert (
        window.classify_view.predictions.rows[0].backgroundRole()
        != window.classify_view.predictions.rows[1].backgroundRole()
    )


def test_colormap_change_and_save_overlay(qtbot, window: MainWindow, colour_model: Path, write_png, tmp_path) -> None:
    _load(qtbot, window, colour_model)
    window.open_images([write_png("leaf photo.png", onnx_factory.mostly((0, 220, 0)))])
    _classified(qtbot, window, "green")
    before = window.classify_view.viewer.image_view.pixmap().toImage()
    window.classify_view.viewer.colormap_combo.setCurrentText("Viridis")
    assert window.classify_view.viewer.image_view.pixmap().toImage() != before
    assert window.classify_view.viewer.default_save_name() == "leaf_photo-green-map.png"

    target = window.classify_view.viewer.save_overlay(tmp_path / "out" / "saved")
    assert target.name == "saved.png" and target.exists()
    written = cv2.cvtColor(cv2.imread(str(target)), cv2.COLOR_BGR2RGB)
    assert written.shape == window.classify_view.viewer.composed().shape
    np.testing.assert_array_equal(written, window.classify_view.viewer.composed())
    assert not list(target.parent.glob("*.partial*"))  # atomic write left no temp file


def test_overlay_file_name_is_safe() -> None:
    assert overlay_file_name(Path("/x/a b?.jpg"), "tabby cat") == "a_b_-tabby_cat-map.png"
    assert overlay_file_name(None, "7") == "pasted-7-map.png"


def test_model_info_panel_fields(qtbot, window: MainWindow, colour_model: Path, write_png) -> None:
    _load(qtbot, window, colour_model)
    values = {name: label.text() for name, label in window.classify_view.model_panel.values.items()}
    assert values["File"] == "colours.onnx"
    assert values["Size"].endswith(("bytes", "KB"))
    assert values["Input"] == "16 × 16 RGB"
    assert values["Backbone"] == "factory-mean-colour"
    assert values["Training"].startswith("synthetic, 300 images, 1 epochs")
    assert values["Held-out accuracy"] == "97.0%"
    assert values["Precision"] == "fp32"
    assert values["Provider"] == "CPU"
    assert values["Last inference"] == "—"
    window.open_images([write_png("b.png", onnx_factory.mostly((0, 0, 220)))])
    _classified(qtbot, window, "blue")
    assert window.classify_view.model_panel.values["Last inference"].text().endswith(" ms")


def test_qimage_to_rgb_round_trip() -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (7, 5, 3), dtype=np.uint8)  # odd width: padded rows
    np.testing.assert_array_equal(qimage_to_rgb(rgb_to_qimage(rgb)), rgb)


def test_paste_image_classifies(qtbot, window: MainWindow, colour_model: Path) -> None:
    _load(qtbot, window, colour_model)
    QGuiApplication.clipboard().setImage(rgb_to_qimage(onnx_factory.mostly((0, 0, 220))))
    window.named_actions["paste"].trigger()
    _classified(qtbot, window, "blue")
    assert window.classify_view.current.path is None
    assert window.classify_view.viewer.image_view.pixmap() is not None
    assert window.named_actions["paste"].shortcut().toString() == "Ctrl+V"


def test_paste_file_url_opens_it(qtbot, window: MainWindow, colour_model: Path, write_png) -> None:
    _load(qtbot, window, colour_model)
    path = write_png("g.png", onnx_factory.mostly((0, 220, 0)))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    QGuiApplication.clipboard().setMimeData(mime)
    window.named_actions["paste"].trigger()
    _classified(qtbot, window, "green")
    assert window.classify_view.image_list.paths() == [path]
    # The clipboard owns the QMimeData now; hand it back empty so Qt and Python do not
    # both delete it at exit (a segfault after the last test otherwise).
    QGuiApplication.clipboard().clear()
    shiboken6.Shiboken.invalidate(mime)


def test_every_menu_action_is_listed_in_shortcuts_dialog(window: MainWindow) -> None:
    dialog = window.show_shortcuts()
    actions = {dialog.table.item(row, 1).text() for row in range(dialog.table.rowCount())}
    assert {"Open image(s)…", "Paste image", "Save overlay as PNG…", "Classify tab", "Keyboard shortcuts"} <= actions
    dialog.close()


def test_theme_follows_override_and_notice_stays_readable(qtbot, monkeypatch) -> None:
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    from desktop.qt.theme import THEME_ENV, ThemeManager, make_palette, notice_style

    assert make_palette(True).color(QPalette.ColorRole.Window).lightness() < 80
    assert make_palette(False).color(QPalette.ColorRole.Window).lightness() > 200
    assert notice_style(True) != notice_style(False)
    monkeypatch.setenv(THEME_ENV, "dark")
    app = QApplication.instance()
    original = app.palette()
    try:
        ThemeManager(app).apply()
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
    finally:
        app.setPalette(original)


def test_a_new_image_shows_its_top_class_map_after_a_click(
    qtbot, window: MainWindow, colour_model: Path, write_png
) -> None:
    """A class clicked on one image never carries over: the next image (new or cached) opens on its top class."""
    _load(qtbot, window, colour_model)
    first = write_png("r.png", onnx_factory.mostly((220, 0, 0)))
    window.open_images([first])
    _classified(qtbot, window, "red")
    window.classify_view.predictions.select_row(1)
    assert window.classify_view.viewer.class_index != window.classify_view.current.top_index
    window.open_images([write_png("g.png", onnx_factory.mostly((0, 220, 0)))])
    _classified(qtbot, window, "green")
    for _ in range(2):  # the new image, then the first one again from the cache
        prediction = window.classify_view.current
        assert (
            window.classify_view.viewer.class_index == prediction.top_index
            and window.classify_view.predictions.selected_row == 0
        )
        np.testing.assert_array_equal(
            window.classify_view.viewer.current_cam(), prediction.cam[..., prediction.top_index]
        )
        assert prediction.top_label in window.classify_view.viewer.cam_caption.text()
        window.classify_view.predictions.select_row(1)
        window.classify_view.show_image(first)
        _classified(qtbot, window, "red")


def test_class_names_from_the_model_are_text(qtbot) -> None:
    """A label that looks like markup is shown as written, in the rows, the message and the tooltip."""
    from PySide6.QtGui import QTextDocument

    from desktop.core.classifier import Prediction
    from desktop.qt.predictions_panel import PredictionsPanel

    panel = PredictionsPanel()
    qtbot.addWidget(panel)
    probabilities = np.array([0.7, 0.3])
    labels = ["<b>bold</b> & co", "plain"]
    panel.show_prediction(Prediction(None, None, list(zip(labels, probabilities.tolist())), probabilities, None, 1.0))
    assert panel.displayed()[0][0] == labels[0]
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in (panel.rows[0].name, panel.message))
    document = QTextDocument()
    document.setHtml(panel.rows[0].toolTip())
    assert document.toPlainText() == f"{labels[0]}: 70.00%"
