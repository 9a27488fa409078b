"""The main window wires the work views: tabs, menus and folder drops reach the Batch tab."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from desktop.qt.main_window import MainWindow
from test_app_window import WAIT_MS, _load, drop_files


def _solid(rgb) -> np.ndarray:
    return np.full((24, 24, 3), rgb, np.uint8)


def test_every_work_view_has_a_tab_and_a_shortcut(window: MainWindow) -> None:
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Classify", "Batch", "Camera", "Augment", "Compare"]
    shortcuts = [a.shortcut().toString() for a in window.view_menu.actions() if a.text().endswith("tab")]
    assert len(set(shortcuts)) == len(titles) and "" not in shortcuts


def test_dropping_a_folder_classifies_it_on_the_batch_tab(qtbot, window: MainWindow, colour_model: Path,
                                                          write_png, tmp_path: Path) -> None:
    _load(qtbot, window, colour_model)
    folder = tmp_path / "holiday"
    write_png("a.png", _solid((230, 20, 20)), folder)
    write_png("b.png", _solid((20, 20, 230)), folder / "nested")
    (folder / "broken.jpg").write_bytes(b"")
    window.batch_view.ask_resume = lambda *args, **kwargs: "restart"
    drop_files(window.viewer.image_view, [folder])
    assert window.tabs.currentWidget() is window.batch_view
    qtbot.waitUntil(lambda: not window.batch_view.running and len(window.batch_view.results()) == 3, timeout=WAIT_MS)
    by_name = {r.path.name: r for r in window.batch_view.results()}
    assert by_name["a.png"].label == "red" and by_name["b.png"].label == "blue"
    assert by_name["broken.jpg"].error


def test_batch_double_click_opens_the_image_on_the_classify_tab(qtbot, window: MainWindow, colour_model: Path,
                                                                 write_png) -> None:
    _load(qtbot, window, colour_model)
    path = write_png("g.png", _solid((20, 230, 20)))
    window.batch_view.open_image_requested.emit(path)
    assert window.tabs.currentWidget() is window.classify_view
    qtbot.waitUntil(lambda: bool(window.predictions.displayed()), timeout=WAIT_MS)
    assert window.image_list.current_path() == path
    assert window.predictions.displayed()[0][0] == "green"
