"""The main window wires the work views: tabs, menus and folder drops reach the Batch tab."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_app_window import WAIT_MS, _load, drop_files

from desktop.qt.augment_view import AugmentView
from desktop.qt.batch_view import BatchView
from desktop.qt.main_window import MainWindow


def _solid(rgb) -> np.ndarray:
    return np.full((24, 24, 3), rgb, np.uint8)


def test_every_work_view_has_a_tab_and_a_shortcut(window: MainWindow) -> None:
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Classify", "Batch", "Camera", "Augment", "Train", "Compare"]
    shortcuts = [a.shortcut().toString() for a in window.view_menu.actions() if a.text().endswith("tab")]
    assert len(set(shortcuts)) == len(titles) and "" not in shortcuts


def test_dropping_a_folder_classifies_it_on_the_batch_tab(
    qtbot, window: MainWindow, colour_model: Path, write_png, tmp_path: Path
) -> None:
    _load(qtbot, window, colour_model)
    folder = tmp_path / "holiday"
    write_png("a.png", _solid((230, 20, 20)), folder)
    write_png("b.png", _solid((20, 20, 230)), folder / "nested")
    (folder / "broken.jpg").write_bytes(b"")
    window.view(BatchView).ask_resume = lambda *args, **kwargs: "restart"
    drop_files(window.classify_view.viewer.image_view, [folder])
    assert window.tabs.currentWidget() is window.view(BatchView)
    qtbot.waitUntil(
        lambda: not window.view(BatchView).running and len(window.view(BatchView).results()) == 3, timeout=WAIT_MS
    )
    by_name = {r.path.name: r for r in window.view(BatchView).results()}
    assert by_name["a.png"].label == "red" and by_name["b.png"].label == "blue"
    assert by_name["broken.jpg"].error


def test_batch_double_click_opens_the_image_on_the_classify_tab(
    qtbot, window: MainWindow, colour_model: Path, write_png
) -> None:
    _load(qtbot, window, colour_model)
    path = write_png("g.png", _solid((20, 230, 20)))
    window.view(BatchView).open_image_requested.emit(path)
    assert window.tabs.currentWidget() is window.classify_view
    qtbot.waitUntil(lambda: bool(window.classify_view.predictions.displayed()), timeout=WAIT_MS)
    assert window.classify_view.image_list.current_path() == path
    assert window.classify_view.predictions.displayed()[0][0] == "green"


# Augment follows Classify -------------------------------------------------------------------
def test_augment_tab_shows_the_image_open_on_classify(qtbot, window: MainWindow, colour_model: Path, write_png) -> None:
    first = write_png("first.png", _solid((230, 20, 20)))
    second = write_png("second.png", _solid((20, 20, 230)))
    window.open_images([first])
    augment = window.view(AugmentView)
    with qtbot.waitSignal(augment.variants_changed, timeout=WAIT_MS):
        window.tabs.setCurrentWidget(augment)
    assert "first.png" in augment.source_label.text() and augment.grid.tile_count() > 0

    window.open_images([second])  # switches to Classify; back on Augment it follows
    with qtbot.waitSignal(augment.variants_changed, timeout=WAIT_MS):
        window.tabs.setCurrentWidget(augment)
    assert "second.png" in augment.source_label.text()


def test_augment_keeps_an_image_the_user_chose_there(qtbot, window: MainWindow, write_png) -> None:
    own = write_png("own.png", _solid((20, 230, 20)))
    augment = window.view(AugmentView)
    window.tabs.setCurrentWidget(augment)
    with qtbot.waitSignal(augment.variants_changed, timeout=WAIT_MS):
        augment.load_image(own)
    window.open_images([write_png("classified.png", _solid((230, 20, 20)))])
    window.tabs.setCurrentWidget(augment)
    assert not augment.follow_image(*window.classify_view.shown_source())
    assert "own.png" in augment.source_label.text()


def test_augment_follows_a_pasted_image(qtbot, window: MainWindow, colour_model: Path) -> None:
    _load(qtbot, window, colour_model)
    window.classify_view.paste_image(_solid((230, 20, 20)))
    augment = window.view(AugmentView)
    with qtbot.waitSignal(augment.variants_changed, timeout=WAIT_MS):
        window.tabs.setCurrentWidget(augment)
    assert "pasted image" in augment.source_label.text() and augment.grid.tile_count() > 0


# Undo a sort -----------------------------------------------------------------------------------
def _undo_action(window: MainWindow):
    action = window.named_actions["undo_sort"]
    assert action in next(a for a in window.menuBar().actions() if a.text() == "&Batch").menu().actions()
    return action


def _sort(qtbot, window: MainWindow, folder: Path, dest: Path, move: bool) -> None:
    window.view(BatchView).ask_resume = lambda *args, **kwargs: "restart"
    assert window.view(BatchView).start_folder(folder)
    qtbot.waitUntil(lambda: not window.view(BatchView).busy, timeout=WAIT_MS)
    assert window.view(BatchView).sort_into(dest, move=move)
    qtbot.waitUntil(lambda: not window.view(BatchView).busy, timeout=WAIT_MS)


def test_undo_is_offered_only_when_a_sort_moved_files(
    qtbot, window: MainWindow, colour_model: Path, write_png, tmp_path: Path
) -> None:
    undo = _undo_action(window)
    assert "Undo" in undo.text()
    assert not undo.isEnabled() and not window.view(BatchView).undo_button.isEnabled()  # nothing sorted yet
    _load(qtbot, window, colour_model)
    folder = tmp_path / "photos"
    write_png("a.png", _solid((230, 20, 20)), folder)
    write_png("b.png", _solid((20, 20, 230)), folder)
    _sort(qtbot, window, folder, tmp_path / "copies", move=False)
    assert not undo.isEnabled()  # a copy leaves nothing to undo
    dest = tmp_path / "moved"
    _sort(qtbot, window, folder, dest, move=True)
    assert undo.isEnabled() and window.view(BatchView).undo_button.isEnabled()
    assert window.settings.get("undo_sort_dest") == str(dest)
    assert window.view(BatchView).undo_sort(dest)
    qtbot.waitUntil(lambda: not window.view(BatchView).busy, timeout=WAIT_MS)
    assert (folder / "a.png").exists()
    assert not undo.isEnabled() and window.settings.get("undo_sort_dest") == ""


def test_undo_is_offered_after_a_restart_while_its_log_is_there(
    qtbot, colour_model: Path, write_png, tmp_path: Path
) -> None:
    def new_window() -> MainWindow:
        win = MainWindow(provider="cpu")
        qtbot.addWidget(win)
        win.show()
        return win

    first = new_window()
    _load(qtbot, first, colour_model)
    folder = tmp_path / "photos"
    write_png("a.png", _solid((230, 20, 20)), folder)
    dest = tmp_path / "moved"
    _sort(qtbot, first, folder, dest, move=True)
    first.close()

    second = new_window()
    assert _undo_action(second).isEnabled() and second.view(BatchView).undo_dest == dest
    second.close()
    for log in dest.glob("sort-log-*.jsonl"):
        log.unlink()  # the log is gone: nothing left that Undo could read
    third = new_window()
    assert not _undo_action(third).isEnabled()
    third.close()
