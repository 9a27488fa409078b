"""The Batch, Camera and Augment tabs and their menus, kept out of the main window shell.

Menu titles and items carry &-mnemonics that must stay unique within their menu bar or
menu (tests/desktop/test_menus.py checks): Alt+M is Model, so Camera is Alt+C.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMenu

from pathlib import Path

from desktop.qt.augment_view import AugmentView
from desktop.qt.batch_view import BatchView
from desktop.qt.camera_view import CameraView

if TYPE_CHECKING:
    from desktop.qt.main_window import MainWindow


def _menu(window: MainWindow, title: str, widget, entries) -> QMenu:
    """A menu before View whose actions switch to `widget`'s tab and then run."""
    menu = QMenu(title, window)
    window.menuBar().insertMenu(window.view_menu.menuAction(), menu)
    for text, shortcut, slot in entries:
        window._action(menu, text, shortcut, lambda _=False, s=slot: window.in_tab(widget, s))
    return menu


def add_work_tabs(window: MainWindow) -> None:
    """Create the views, add their tabs (Ctrl+2..4) and menus, and connect them."""
    status = window.statusBar()
    window.batch_view = BatchView(window.controller)
    window.camera_view = CameraView(window.controller)
    window.augment_view = AugmentView(window.controller)
    window.add_view_tab("&Batch", window.batch_view, "Ctrl+2")
    window.add_view_tab("C&amera", window.camera_view, "Ctrl+3")
    window.add_view_tab("A&ugment", window.augment_view, "Ctrl+4")

    window.batch_view.open_image_requested.connect(window.show_image)
    window.batch_view.status_message.connect(lambda message: status.showMessage(message, 8000))
    window.augment_view.message_changed.connect(lambda message: status.showMessage(message, 8000))
    window.classify_view.folders_dropped.connect(lambda folders: window.classify_folder(folders[0]))
    window.tabs.currentChanged.connect(lambda _index: _augment_follows_classify(window))

    batch = window.batch_view
    batch_menu = _menu(window, "&Batch", batch, (
        ("Classify &folder…", "Ctrl+Shift+O", batch.choose_and_start),
        ("&Cancel batch", "Ctrl+.", batch.cancel),
        ("&Export results as CSV…", "Ctrl+Shift+E", lambda: batch.choose_and_export("csv")),
        ("Export results as &JSON…", "Ctrl+Shift+J", lambda: batch.choose_and_export("json")),
        ("&Sort into folders…", "Ctrl+Shift+F", batch.choose_and_sort),
    ))
    undo = window._action(batch_menu, "&Undo a sort…", "Ctrl+Shift+Z", lambda: window.in_tab(batch, batch.choose_and_undo))
    batch.undo_available.connect(undo.setEnabled)
    batch.undo_dest_changed.connect(lambda dest: _remember_undo_dest(window, dest))
    if not batch.set_undo_dest(window.settings.get("undo_sort_dest") or None):
        window.settings.set("undo_sort_dest", "")  # its folder or log is gone: forget it
    camera = window.camera_view
    _menu(window, "&Camera", camera, (
        ("&Find cameras", "Ctrl+Shift+K", camera.find_cameras),
        ("&Stop camera", "Ctrl+Shift+X", camera.stop),
        ("F&reeze frame (Space)", "", camera.toggle_freeze),
        ("Save s&napshot", "Ctrl+Shift+P", camera.snapshot),
    ))
    augment = window.augment_view
    _menu(window, "A&ugment", augment, (
        ("&Open image…", "Ctrl+Shift+I", augment.open_image_dialog),
        ("&Reshuffle (Ctrl+Shift+R)", "", augment.reshuffle),
        ("Use the &model's settings", "Ctrl+Shift+U", augment.use_model_settings),
        ("&Export as YAML for convnet-train…", "Ctrl+Shift+Y", augment.export_yaml),
    ))


def _augment_follows_classify(window: MainWindow) -> None:
    """On the Augment tab, show the image open on Classify unless Augment has its own."""
    if window.tabs.currentWidget() is window.augment_view:
        window.augment_view.follow_image(*window.classify_view.shown_source())


def _remember_undo_dest(window: MainWindow, dest: Path | None) -> None:
    """Persist at once: Undo must still be offered after a crash or a restart."""
    window.settings.set("undo_sort_dest", str(dest) if dest is not None else "")
    window.settings.save()
