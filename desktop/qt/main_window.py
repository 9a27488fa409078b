"""The main window: a shell of tabs, menus and a status bar wired to the controller.

It knows no tab by name: it builds the views listed in desktop/qt/tabs.py and, for each,
adds its tab and shortcut, its menu entries, its settings and its shutdown (the
interface is desktop/qt/tab_view.py). Only "open these files" goes to the Classify tab,
the app's home. This module routes app-wide actions and persists the window's settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from convnet_common.imaging import IMAGE_EXTENSIONS
from desktop.core.model import LoadedModel
from desktop.core.notices import NoticeBoard, model_notices
from desktop.core.providers import FALLBACK_NOTICES, PROVIDER_CHOICES
from desktop.core.settings import Settings
from desktop.qt import tabs
from desktop.qt.adopt_dialog import AdoptDialog
from desktop.qt.classify_view import ClassifyView
from desktop.qt.controller import InferenceController
from desktop.qt.notice_bar import NoticeBar
from desktop.qt.plain_text import PlainLabel, message_box, tooltip
from desktop.qt.shortcuts_dialog import ShortcutsDialog
from desktop.qt.tab_view import FILE_MENU, MODEL_MENU, OWN_MENU, VIEW_MENU, MenuEntry, TabView, V

APP_NAME = "ConvNet Studio"
IMAGE_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS)))
MODEL_FILTER = "Models (*.onnx *.h5 *.keras);;ONNX models (*.onnx);;Keras models (*.h5 *.keras);;All files (*)"
# The contract's refusal of an input that is not uint8 NHWC (model_contract.read_input).
ADOPTABLE_INPUT = "model input must be uint8 NHWC RGB"
PROVIDER_TITLES = {"auto": "&Auto (CUDA if usable)", "cuda": "&CUDA", "cpu": "C&PU"}


class MainWindow(QMainWindow):
    """Routes user actions to views and the controller; restores and saves settings.

    Its tabs are the classes in desktop.qt.tabs.TAB_VIEWS, read when the window is built;
    the window is each one's TabHost.
    """

    def __init__(self, provider: str | None = None, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings.load()
        provider = provider or self.settings.get("provider")
        self.setWindowTitle(APP_NAME)
        self.resize(1180, 760)
        self.controller = InferenceController(provider if provider in PROVIDER_CHOICES else "auto", self)
        self.notices = NoticeBoard(
            [self.settings.warning] if self.settings.warning else [], self.settings.get("dismissed_notices")
        )
        self.views: list[TabView] = [cls(self.controller) for cls in tabs.TAB_VIEWS]
        self.named_actions: dict[str, QAction] = {}  # menu actions by MenuEntry.name, for code that needs one

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
        for view in self.views:
            self._add_tab(view)
            view.attach(self)
        self.tabs.currentChanged.connect(self._on_tab_changed)

        self.controller.model_loading.connect(
            lambda path: self.statusBar().showMessage(f"Loading model {Path(path).name}…")
        )
        self.controller.model_changed.connect(self._on_model_changed)
        self.controller.model_failed.connect(self._on_model_failed)
        self.refresh_theme()
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.refresh_theme)
        self._show_notices()
        self._restore_settings()
        self.model_status.setText("No model loaded")

    # tabs (the TabHost interface) ------------------------------------------------------
    def view(self, cls: type[V]) -> V:
        """The tab that is a `cls` (KeyError if none is registered)."""
        for view in self.views:
            if isinstance(view, cls):
                return view
        raise KeyError(cls.__name__)

    @property
    def classify_view(self) -> ClassifyView:
        return self.view(ClassifyView)

    def show_tab(self, view: QWidget) -> None:
        self.tabs.setCurrentWidget(view)

    def show_status(self, text: str, timeout_ms: int = 8000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def show_inference_ms(self, ms: float) -> None:
        self.time_status.setText(f"Inference: {ms:.1f} ms")

    def _add_tab(self, view: TabView) -> None:
        """The tab, its View-menu action (Ctrl+N), its own menu (before View) and its entries elsewhere."""
        title, shortcut = view.tab_title, view.tab_shortcut
        index = self.tabs.addTab(view, title.replace("&", ""))
        self.tabs.setTabToolTip(index, f"{title.replace('&', '')} ({shortcut})")
        action = QAction(f"{title} tab", self, shortcut=QKeySequence(shortcut))
        action.triggered.connect(lambda: self.show_tab(view))
        self.view_menu.insertAction(self._view_tabs_end, action)
        own_menu = None
        if view.menu_title:
            own_menu = QMenu(view.menu_title, self)
            self.menuBar().insertMenu(self.view_menu.menuAction(), own_menu)
        for entry in view.menu_entries():
            menu, before = own_menu, None
            if entry.menu != OWN_MENU:
                menu, before = self._shared_menus[entry.menu]
            if menu is None:
                raise ValueError(f"{type(view).__name__}: entry {entry.text!r} needs a menu_title")
            self._add_entry(menu, before, view, entry)

    def _add_entry(self, menu: QMenu, before: QAction | None, view: TabView, entry: MenuEntry) -> QAction:
        slot = (lambda _=False, s=entry.slot: self.in_tab(view, s)) if entry.in_tab else entry.slot
        action = self._action(menu, entry.text, entry.shortcut, slot, entry.tip, before)
        if entry.checked is not None:
            action.setCheckable(True)
            action.setChecked(entry.checked)
        if entry.checked_signal is not None:
            entry.checked_signal.connect(action.setChecked)
        action.setEnabled(entry.enabled)
        if entry.enabled_signal is not None:
            entry.enabled_signal.connect(action.setEnabled)
        if entry.name:
            self.named_actions[entry.name] = action
        return action

    def _on_tab_changed(self, index: int) -> None:
        view = self.tabs.widget(index)
        if isinstance(view, TabView):
            view.tab_shown()

    def in_tab(self, widget: QWidget, slot) -> None:
        """Run a menu action on its own tab, so its result is visible."""
        self.tabs.setCurrentWidget(widget)
        slot()

    def show_image(self, path: str | Path) -> None:
        """Show one image in the Classify tab."""
        self.show_tab(self.classify_view)
        self.classify_view.show_image(Path(path))

    # menus -----------------------------------------------------------------------------
    def _action(
        self,
        menu: QMenu,
        text: str,
        shortcut: str | QKeySequence.StandardKey,
        slot,
        tip: str = "",
        before: QAction | None = None,
    ) -> QAction:
        action = QAction(text, self, shortcut=QKeySequence(shortcut))
        action.triggered.connect(slot)
        action.setStatusTip(tip)
        if before is None:
            menu.addAction(action)
        else:
            menu.insertAction(before, action)
        return action

    def _build_menus(self) -> None:
        """File, View, Model and Help; views' entries go at the marked places (see _add_tab)."""
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Open &image(s)…", "Ctrl+O", self._choose_images)
        self._action(file_menu, "Open &model…", "Ctrl+M", self._choose_model)
        self._action(file_menu, "&Adopt model folder…", "Ctrl+Shift+A", self._choose_adopt_folder)
        self.recent_menu = file_menu.addMenu("&Recent models")
        self.recent_menu.aboutToShow.connect(self._rebuild_recent_menu)
        file_menu.addSeparator()
        file_end = file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)

        self.view_menu = bar.addMenu("&View")
        self._view_tabs_end = self.view_menu.addSeparator()

        model_menu = bar.addMenu("&Model")
        self._action(model_menu, "&Reload model", "F5", self._reload_model)
        provider_menu = model_menu.addMenu("&Execution provider")
        self.provider_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for index, choice in enumerate(PROVIDER_CHOICES):
            action = self._action(
                provider_menu,
                PROVIDER_TITLES[choice],
                f"Ctrl+Alt+{index + 1}",
                lambda _checked=False, c=choice: self.set_provider(c),
            )
            action.setCheckable(True)
            action.setChecked(choice == self.controller.provider)
            group.addAction(action)
            self.provider_actions[choice] = action
        self._shared_menus = {
            FILE_MENU: (file_menu, file_end),
            VIEW_MENU: (self.view_menu, None),
            MODEL_MENU: (model_menu, provider_menu.menuAction()),
        }

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", "F1", self.show_shortcuts)
        self._action(help_menu, "&About", "", self.show_about)

    def _build_status_bar(self) -> None:
        self.model_status = PlainLabel()
        self.provider_status = PlainLabel()
        self.time_status = PlainLabel()
        for label in (self.model_status, self.provider_status, self.time_status):
            self.statusBar().addPermanentWidget(label)

    # actions ---------------------------------------------------------------------------
    def show_error(self, title: str, text: str) -> None:
        """Report a problem without blocking the event loop (tests replace this method)."""
        box = message_box(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_about(self) -> None:
        message_box(
            QMessageBox.Icon.Information,
            APP_NAME,
            f"{APP_NAME}: classify images with ONNX models.",
            QMessageBox.StandardButton.Ok,
            self,
        ).exec()

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
            self.open_model_source(Path(file))

    def _choose_adopt_folder(self) -> None:
        """A SavedModel, Lobe or Teachable Machine export is a folder: chosen as one."""
        folder = QFileDialog.getExistingDirectory(self, "Adopt model folder", self.settings.get("last_model_dir"))
        if folder:
            self.settings.set("last_model_dir", str(Path(folder).parent))
            self.open_adopt_dialog(Path(folder))

    def open_model_source(self, path: str | Path) -> None:
        """Open an .onnx file (the Adopt dialog follows if the app cannot use it as it is);
        anything else that is a model (Keras file, model folder) goes to the Adopt dialog."""
        path = Path(path)
        if path.suffix.lower() == ".onnx" and path.is_file():
            self.open_model(path)
        else:
            self.open_adopt_dialog(path)

    def open_adopt_dialog(self, path: Path, reason: str | None = None) -> AdoptDialog:
        """The Adopt model dialog for `path`, previewing on the Classify tab's picture; the
        adopted copy opens here when saved."""
        current = self.classify_view.current
        image = current.image if current is not None else None
        dialog = AdoptDialog(path, image, reason, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.adopted.connect(self.open_model)
        dialog.open()
        return dialog

    def open_model(self, path: str | Path) -> None:
        """Load a model in the background; the current one stays until the new one works."""
        self.controller.load_model(path)

    def open_images(self, paths: Iterable[str | Path]) -> None:
        """Files named on the command line or chosen in File -> Open: listed and classified on Classify."""
        self.show_tab(self.classify_view)
        self.classify_view.open_images(paths)

    def set_provider(self, provider: str) -> None:
        """Remember the provider and reload the model with it (a fallback shows a notice)."""
        self.settings.set("provider", provider)
        self.provider_actions[provider].setChecked(True)
        self.controller.set_provider(provider)

    def _reload_model(self) -> None:
        if self.controller.model is not None:
            self.open_model(self.controller.model.info.path)

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
            action.setToolTip(tooltip(str(path)))
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
        self.provider_status.setToolTip(tooltip(FALLBACK_NOTICES.get(model.cuda_fallback or "", "")))
        self.time_status.setText("")
        self.notices.set_model_notices(model_notices(model))
        self._show_notices()
        self.settings.add_recent_model(info.path)
        self.settings.save()

    def _on_model_failed(self, path: str, message: str) -> None:
        self.statusBar().clearMessage()
        if ADOPTABLE_INPUT in message:  # a model from another tool: offer to adopt it
            self.open_adopt_dialog(Path(path), reason=message)
            return
        kept = f"\n\nStill using {self.controller.model.info.name}." if self.controller.model else ""
        self.show_error("Could not open model", f"{path}\n\n{message}{kept}")

    # settings --------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = self.settings
        if s.get("window_geometry"):
            self.restoreGeometry(QByteArray.fromBase64(s.get("window_geometry").encode("ascii")))
        if s.get("window_state"):
            self.restoreState(QByteArray.fromBase64(s.get("window_state").encode("ascii")))
        for view in self.views:
            view.restore_settings(s)

    def save_settings(self) -> None:
        s = self.settings
        s.set("window_geometry", bytes(self.saveGeometry().toBase64()).decode("ascii"))
        s.set("window_state", bytes(self.saveState().toBase64()).decode("ascii"))
        for view in self.views:
            view.save_settings(s)
        s.set("provider", self.controller.provider)
        error = s.save()
        if error:
            print(error)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not all(view.confirm_close() for view in self.views):  # a tab asked and the user said no
            event.ignore()
            return
        self.save_settings()
        for view in self.views:  # every tab: none of their worker threads may outlive the window
            view.shutdown()
        self.controller.shutdown()
        super().closeEvent(event)
