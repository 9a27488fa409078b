"""The main window: a shell of tabs, menus and a status bar wired to the controller.

Views do the work: ClassifyView (first tab), CompareView (pinned last) and any view
added with `add_view_tab`. This module only routes actions and persists settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMenu, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from convnet_common.imaging import IMAGE_EXTENSIONS
from desktop.core.activation import COLORMAPS
from desktop.core.model import FALLBACK_NOTICES, PROVIDER_CHOICES, LoadedModel
from desktop.core.notices import NoticeBoard, model_notices
from desktop.core.settings import Settings
from desktop.qt.classify_view import ClassifyView
from desktop.qt.clipboard import clipboard_content
from desktop.qt.compare_view import CompareView
from desktop.qt.controller import InferenceController
from desktop.qt.notice_bar import NoticeBar
from desktop.qt.shortcuts_dialog import ShortcutsDialog
from desktop.qt.work_tabs import add_work_tabs

APP_NAME = "ConvNet Studio"
IMAGE_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS)))
MODEL_FILTER = "ONNX models (*.onnx);;All files (*)"
PROVIDER_TITLES = {"auto": "&Auto (CUDA if usable)", "cuda": "&CUDA", "cpu": "C&PU"}


class MainWindow(QMainWindow):
    """Routes user actions to views and the controller; restores and saves settings."""

    def __init__(self, provider: str | None = None, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings.load()
        provider = provider or self.settings.get("provider")
        self.setWindowTitle(APP_NAME)
        self.resize(1180, 760)
        self.controller = InferenceController(provider if provider in PROVIDER_CHOICES else "auto", self)
        self.notices = NoticeBoard([self.settings.warning] if self.settings.warning else [],
                                   self.settings.get("dismissed_notices"))

        self.classify_view = ClassifyView(self.controller)
        self.compare_view = CompareView(self.controller)
        # The single-image widgets, by their old names (tests and other views use them).
        self.image_list = self.classify_view.image_list
        self.viewer = self.classify_view.viewer
        self.predictions = self.classify_view.predictions
        self.model_panel = self.classify_view.model_panel

        self.notice_bar = NoticeBar()
        self.notice_bar.dismissed.connect(self.dismiss_notices)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        centre = QWidget()
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.notice_bar)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(centre)
        self._build_menus()
        self._build_status_bar()
        self.add_view_tab("&Classify", self.classify_view, "Ctrl+1")
        self.add_view_tab("Com&pare", self.compare_view, "Ctrl+5")
        self._add_work_views()

        self.classify_view.image_shown.connect(self.compare_view.set_image)
        self.classify_view.inference_time.connect(lambda ms: self.time_status.setText(f"Inference: {ms:.1f} ms"))
        self.controller.model_loading.connect(lambda path: self.statusBar().showMessage(f"Loading model {Path(path).name}…"))
        self.controller.model_changed.connect(self._on_model_changed)
        self.viewer.saved.connect(lambda path: self.statusBar().showMessage(f"Saved overlay to {path}", 8000))
        self.viewer.save_failed.connect(lambda message: self.show_error("Could not save overlay", message))
        self.controller.model_failed.connect(self._on_model_failed)
        self.refresh_theme()
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.refresh_theme)
        self._show_notices()
        self._restore_settings()
        self.model_status.setText("No model loaded")

    # tabs ------------------------------------------------------------------------------
    def _add_work_views(self) -> None:
        """Batch, Camera and Augment tabs with their menus (desktop/qt/work_tabs.py)."""
        add_work_tabs(self)

    def in_tab(self, widget: QWidget, slot) -> None:
        """Run a menu action on its own tab, so its result is visible."""
        self.tabs.setCurrentWidget(widget)
        slot()

    def classify_folder(self, folder: str | Path) -> bool:
        """A dropped or chosen folder: classified in bulk on the Batch tab."""
        self.tabs.setCurrentWidget(self.batch_view)
        return self.batch_view.start_folder(Path(folder))

    def add_view_tab(self, title: str, widget: QWidget, shortcut: str) -> QAction:
        """Add a tab (before Compare, which stays last) and a View-menu action to reach it."""
        compare_index = self.tabs.indexOf(self.compare_view)
        index = self.tabs.insertTab(compare_index, widget, title.replace("&", "")) if compare_index >= 0 \
            else self.tabs.addTab(widget, title.replace("&", ""))
        action = QAction(f"{title} tab", self, shortcut=QKeySequence(shortcut))
        action.triggered.connect(lambda: self.tabs.setCurrentWidget(widget))
        self.tabs.setTabToolTip(index, f"{title.replace('&', '')} ({shortcut})")
        self.view_menu.insertAction(self._view_tabs_end, action)
        return action

    def show_image(self, path: str | Path) -> None:
        """Show one image in the Classify tab (e.g. the batch view's open_image_requested)."""
        self.tabs.setCurrentWidget(self.classify_view)
        self.classify_view.show_image(Path(path))

    # menus -----------------------------------------------------------------------------
    def _action(self, menu: QMenu, text: str, shortcut: str | QKeySequence.StandardKey, slot, tip: str = "") -> QAction:
        action = QAction(text, self, shortcut=QKeySequence(shortcut))
        action.triggered.connect(slot)
        action.setStatusTip(tip)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_images_action = self._action(file_menu, "Open &image(s)…", "Ctrl+O", self._choose_images)
        self.open_model_action = self._action(file_menu, "Open &model…", "Ctrl+M", self._choose_model)
        self.recent_menu = file_menu.addMenu("&Recent models")
        self.recent_menu.aboutToShow.connect(self._rebuild_recent_menu)
        file_menu.addSeparator()
        self.paste_action = self._action(file_menu, "&Paste image", QKeySequence.StandardKey.Paste, self.paste_from_clipboard,
                                         "Classify the image (or image file) on the clipboard")
        self.save_overlay_action = self._action(file_menu, "&Save overlay as PNG…", "Ctrl+Shift+S",
                                                self.viewer.choose_save_path)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)

        self.view_menu = bar.addMenu("&View")
        self._view_tabs_end = self.view_menu.addSeparator()
        self.toggle_map_action = self._action(self.view_menu, "Show activation &map", "Ctrl+T",
                                              lambda checked: self.viewer.overlay_checkbox.setChecked(checked))
        self.toggle_map_action.setCheckable(True)
        self.toggle_map_action.setChecked(True)
        self.viewer.overlay_checkbox.toggled.connect(self.toggle_map_action.setChecked)
        self._action(self.view_menu, "&Next colour map", "Ctrl+Shift+C", self._next_colormap)
        self._action(self.view_menu, "Map &opacity up", "Ctrl+=", lambda: self._nudge_opacity(10))
        self._action(self.view_menu, "Map opacity &down", "Ctrl+-", lambda: self._nudge_opacity(-10))

        model_menu = bar.addMenu("&Model")
        self._action(model_menu, "&Reload model", "F5", self._reload_model)
        self._action(model_menu, "Load &second model to compare…", "Ctrl+Shift+M", self._choose_second_model)
        provider_menu = model_menu.addMenu("&Execution provider")
        self.provider_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for index, choice in enumerate(PROVIDER_CHOICES):
            action = self._action(provider_menu, PROVIDER_TITLES[choice], f"Ctrl+Alt+{index + 1}",
                                  lambda _checked=False, c=choice: self.set_provider(c))
            action.setCheckable(True)
            action.setChecked(choice == self.controller.provider)
            group.addAction(action)
            self.provider_actions[choice] = action

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", "F1", self.show_shortcuts)
        self._action(help_menu, "&About", "", lambda: QMessageBox.about(self, APP_NAME, f"{APP_NAME}: classify images with ONNX models."))

    def _build_status_bar(self) -> None:
        self.model_status = QLabel()
        self.provider_status = QLabel()
        self.time_status = QLabel()
        for label in (self.model_status, self.provider_status, self.time_status):
            self.statusBar().addPermanentWidget(label)

    # actions ---------------------------------------------------------------------------
    def show_error(self, title: str, text: str) -> None:
        """Report a problem without blocking the event loop (tests replace this method)."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.menuBar(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.get("last_image_dir"), IMAGE_FILTER)
        if files:
            self.settings.set("last_image_dir", str(Path(files[0]).parent))
            self.open_images([Path(f) for f in files])

    def _choose_model(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Open model", self.settings.get("last_model_dir"), MODEL_FILTER)
        if file:
            self.settings.set("last_model_dir", str(Path(file).parent))
            self.open_model(Path(file))

    def _choose_second_model(self) -> None:
        self.tabs.setCurrentWidget(self.compare_view)
        self.compare_view.last_dir = self.compare_view.last_dir or self.settings.get("last_model_dir")
        self.compare_view.choose_second_model()

    def open_model(self, path: str | Path) -> None:
        """Load a model in the background; the current one stays until the new one works."""
        self.controller.load_model(path)

    def open_images(self, paths: Iterable[str | Path]) -> None:
        self.tabs.setCurrentWidget(self.classify_view)
        self.classify_view.open_images(paths)

    def paste_from_clipboard(self) -> bool:
        """Classify what is on the clipboard: image files by URL, else pixels; say so if neither."""
        files, pixels = clipboard_content(QGuiApplication.clipboard().mimeData())
        if files:
            self.open_images(files)
            return True
        if pixels is None:
            self.statusBar().showMessage("The clipboard holds no image or image file.", 5000)
            return False
        self.tabs.setCurrentWidget(self.classify_view)
        return self.classify_view.paste_image(pixels)

    def set_provider(self, provider: str) -> None:
        """Remember the provider and reload the model with it (a fallback shows a notice)."""
        self.settings.set("provider", provider)
        self.provider_actions[provider].setChecked(True)
        self.controller.set_provider(provider)

    def _reload_model(self) -> None:
        if self.controller.model is not None:
            self.open_model(self.controller.model.info.path)

    def _next_colormap(self) -> None:
        names = list(COLORMAPS)
        current = names.index(self.viewer.colormap_name) if self.viewer.colormap_name in names else -1
        self.viewer.set_colormap(names[(current + 1) % len(names)])

    def _nudge_opacity(self, step: int) -> None:
        self.viewer.opacity_slider.setValue(self.viewer.opacity_slider.value() + step)

    # recent models ---------------------------------------------------------------------
    def _rebuild_recent_menu(self) -> None:
        missing = self.settings.prune_recent_models()
        if missing:
            names = ", ".join(p.name for p in missing)
            self.statusBar().showMessage(f"Removed missing model(s) from Recent models: {names}", 8000)
            self.settings.save()
        self.recent_menu.clear()
        for number, path in enumerate(self.settings.recent_models(), start=1):
            action = self.recent_menu.addAction(f"&{number} {path.name}" if number < 10 else path.name)
            action.setToolTip(str(path))
            action.setStatusTip(str(path))
            action.triggered.connect(lambda _checked=False, p=path: self.open_recent_model(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def open_recent_model(self, path: Path) -> None:
        if not path.is_file():
            self.settings.prune_recent_models()
            self.settings.save()
            self.show_error("Model not found", f"{path}\n\nThe file is gone; it was removed from Recent models.")
            return
        self.open_model(path)

    # controller results ----------------------------------------------------------------
    def _show_notices(self) -> None:
        self.notice_bar.show_notices(self.notices.visible())

    def dismiss_notices(self) -> None:
        """The banner's close button: hide it; notices with a key (the CPU fallback) stay closed for good."""
        keys = self.notices.dismiss()
        self._show_notices()
        if keys:
            self.settings.set("dismissed_notices", sorted(self.notices.dismissed))
            self.settings.save()

    def refresh_theme(self, *_args: object) -> None:
        """Re-style what the palette cannot (the notice bar) after a light/dark switch."""
        self.notice_bar.refresh_theme()

    def _on_model_changed(self, model: LoadedModel) -> None:
        info = model.info
        self.statusBar().clearMessage()
        self.setWindowTitle(f"{APP_NAME} — {info.name}")
        self.model_status.setText(f"Model: {info.name}")
        self.provider_status.setText(f"Provider: {model.provider_in_use}")
        # The reason for a CPU fallback stays one hover away after its banner is closed.
        self.provider_status.setToolTip(FALLBACK_NOTICES.get(model.cuda_fallback or "", ""))
        self.time_status.setText("")
        self.notices.set_model_notices(model_notices(model))
        self._show_notices()
        self.settings.add_recent_model(info.path)
        self.settings.save()

    def _on_model_failed(self, path: str, message: str) -> None:
        self.statusBar().clearMessage()
        kept = f"\n\nStill using {self.controller.model.info.name}." if self.controller.model else ""
        self.show_error("Could not open model", f"{path}\n\n{message}{kept}")

    # settings --------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = self.settings
        if s.get("window_geometry"):
            self.restoreGeometry(QByteArray.fromBase64(s.get("window_geometry").encode("ascii")))
        if s.get("window_state"):
            self.restoreState(QByteArray.fromBase64(s.get("window_state").encode("ascii")))
        self.classify_view.restore_panel_sizes(s.get("splitter_sizes"))
        self.viewer.set_colormap(s.get("colormap"))
        self.viewer.opacity_slider.setValue(max(0, min(100, s.get("opacity"))))
        self.viewer.overlay_checkbox.setChecked(s.get("show_map"))
        self.viewer.last_save_dir = s.get("last_image_dir")
        self.compare_view.last_dir = s.get("last_model_dir")

    def save_settings(self) -> None:
        s = self.settings
        s.set("window_geometry", bytes(self.saveGeometry().toBase64()).decode("ascii"))
        s.set("window_state", bytes(self.saveState().toBase64()).decode("ascii"))
        s.set("splitter_sizes", self.classify_view.panel_sizes())
        s.set("colormap", self.viewer.colormap_name)
        s.set("opacity", self.viewer.opacity_slider.value())
        s.set("show_map", self.viewer.overlay_checkbox.isChecked())
        s.set("provider", self.controller.provider)
        error = s.save()
        if error:
            print(error)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.save_settings()
        for view in (self.camera_view, self.batch_view, self.augment_view, self.compare_view):
            view.shutdown()
        self.controller.shutdown()
        super().closeEvent(event)
