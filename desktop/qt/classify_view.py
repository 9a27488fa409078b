"""The "Classify" tab: image list, image + activation map, top-k list and model info.

Everything about one image at a time lives here so the main window stays a shell: its
menu entries (paste, save overlay, the map's controls) and its settings too.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from desktop.core.batch import iter_image_files
from desktop.core.classifier import Prediction
from desktop.core.model import LoadedModel
from desktop.core.settings import Settings, usable_panel_sizes
from desktop.qt.clipboard import clipboard_content
from desktop.qt.controller import InferenceController
from desktop.qt.forward_map_worker import ForwardMaps
from desktop.qt.image_list import ImageList
from desktop.qt.image_view import EMPTY_HINT
from desktop.qt.map_choice import SETTINGS_KEY as MAP_CHOICE_SETTING
from desktop.qt.map_choice import MapChoice
from desktop.qt.model_panel import NO_MODEL_TEXT, ModelPanel
from desktop.qt.predictions_panel import PredictionsPanel
from desktop.qt.tab_view import FILE_MENU, MODEL_MENU, VIEW_MENU, MenuEntry, TabHost, TabView
from desktop.qt.unknown_threshold_dialog import UnknownThresholdDialog, apply_choice
from desktop.qt.viewer import Viewer

DEFAULT_PANEL_SIZES = [190, 650, 340]  # image list, picture, predictions + model
MIN_VIEWER_WIDTH = 120


class ClassifyView(TabView, QWidget):
    """One image at a time: pick a class in the list to see where the network looked for it."""

    tab_title = "&Classify"
    tab_shortcut = "Ctrl+1"

    image_shown = Signal(object, object)  # RGB array, Path | None — the Compare tab follows it
    inference_time = Signal(float)  # ms of the prediction on display
    folders_dropped = Signal(list)  # folders go to the batch view, which classifies in bulk
    unknown_available = Signal(bool)  # whether the model has an unknown score (Model → Unknown threshold…)

    def __init__(self, controller: InferenceController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._pending: set[Path] = set()
        self._pasted: np.ndarray | None = None  # the pasted image on display, if any
        self._awaiting_paste = False
        self.current: Prediction | None = None
        self._host: TabHost | None = None

        self.image_list = ImageList()
        self.viewer = Viewer()
        # Models without an in-graph map get one computed from forward passes, on demand here only.
        self.forward_maps = ForwardMaps(lambda: controller.model, parent=self)
        self.viewer.set_map_source(self.forward_maps)
        self.map_choice = MapChoice(lambda: controller.model, parent=self)
        self.viewer.set_map_choice(self.map_choice)
        controller.model_changed.connect(lambda *_: self.map_choice.refresh())
        self.predictions = PredictionsPanel()
        self.model_panel = ModelPanel()
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.predictions)
        side_layout.addWidget(self.model_panel)
        side_layout.addStretch(1)
        side.setMinimumWidth(300)
        self.viewer.setMinimumWidth(MIN_VIEWER_WIDTH)
        self.side = side
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.image_list)
        self.splitter.addWidget(self.viewer)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(1, 1)
        # No panel can be dragged to nothing: a collapsed one has no visible handle to get it back.
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes(DEFAULT_PANEL_SIZES)
        self._list_width = DEFAULT_PANEL_SIZES[0]  # what the hidden list gets when shown
        self.splitter.splitterMoved.connect(self._remember_list_width)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.image_list.hide()  # shown once there is something to list

        self.viewer.image_view.files_dropped.connect(self._on_drop)
        self.image_list.path_selected.connect(self._on_path_selected)
        self.predictions.class_selected.connect(self.viewer.show_class)
        controller.model_changed.connect(self._on_model_changed)
        controller.prediction_ready.connect(self._on_prediction)
        controller.unknown_threshold_changed.connect(self._on_threshold_changed)
        self.show_no_model()

    # the window ------------------------------------------------------------------------
    def menu_entries(self) -> list[MenuEntry]:
        viewer = self.viewer
        return [
            MenuEntry(
                "&Paste image",
                QKeySequence.StandardKey.Paste,
                self.paste_from_clipboard,
                "Classify the image (or image file) on the clipboard",
                menu=FILE_MENU,
                in_tab=False,
                name="paste",
            ),
            MenuEntry(
                "&Save overlay as PNG…",
                "Ctrl+Shift+S",
                viewer.choose_save_path,
                menu=FILE_MENU,
                in_tab=False,
                name="save_overlay",
            ),
            MenuEntry(
                "Show activation &map",
                "Ctrl+T",
                viewer.set_map_shown,
                menu=VIEW_MENU,
                in_tab=False,
                checked=True,
                checked_signal=viewer.map_shown_changed,
                name="toggle_map",
            ),
            MenuEntry(
                "&Unknown threshold…",
                "Ctrl+Shift+H",
                self.edit_unknown_threshold,
                "Set the unknown score over which an image is called Unknown, for this model",
                menu=MODEL_MENU,
                in_tab=False,
                enabled=False,
                enabled_signal=self.unknown_available,
                name="unknown_threshold",
            ),
            MenuEntry("&Next colour map", "Ctrl+Shift+C", viewer.next_colormap, menu=VIEW_MENU, in_tab=False),
            MenuEntry("Map &opacity up", "Ctrl+=", lambda: viewer.nudge_opacity(10), menu=VIEW_MENU, in_tab=False),
            MenuEntry("Map opacity &down", "Ctrl+-", lambda: viewer.nudge_opacity(-10), menu=VIEW_MENU, in_tab=False),
        ]

    def attach(self, host: TabHost) -> None:
        self._host = host
        self.controller.threshold_for = host.settings.unknown_threshold  # applied as each model loads
        self.inference_time.connect(host.show_inference_ms)
        self.viewer.saved.connect(lambda path: host.show_status(f"Saved overlay to {path}", 8000))
        self.map_choice.failed.connect(lambda message: host.show_status(message, 8000))
        self.viewer.save_failed.connect(lambda message: host.show_error("Could not save overlay", message))

    def restore_settings(self, settings: Settings) -> None:
        self.restore_panel_sizes(settings.get("splitter_sizes"))
        self.viewer.set_colormap(settings.get("colormap"))
        self.viewer.set_opacity_percent(settings.get("opacity"))
        self.viewer.set_map_shown(settings.get("show_map"))
        self.map_choice.set_preferred(settings.get(MAP_CHOICE_SETTING))
        self.viewer.last_save_dir = settings.get("last_image_dir")

    def save_settings(self, settings: Settings) -> None:
        settings.set("splitter_sizes", self.panel_sizes())
        settings.set("colormap", self.viewer.colormap_name)
        settings.set("opacity", self.viewer.opacity_percent)
        settings.set("show_map", self.viewer.map_shown)
        settings.set(MAP_CHOICE_SETTING, self.map_choice.preferred)

    def paste_from_clipboard(self) -> bool:
        """Classify what is on the clipboard: image files by URL, else pixels; say so if neither."""
        files, pixels = clipboard_content(QGuiApplication.clipboard().mimeData())
        if files or pixels is not None:
            if self._host is not None:
                self._host.show_tab(self)
        if files:
            self.open_images(files)
            return True
        if pixels is None:
            if self._host is not None:
                self._host.show_status("The clipboard holds no image or image file.", 5000)
            return False
        return self.paste_image(pixels)

    # opening ---------------------------------------------------------------------------
    def _on_drop(self, paths: list) -> None:
        """Files open here; a dropped folder is a batch job, handed on by signal."""
        folders = [Path(p) for p in paths if Path(p).is_dir()]
        files = [Path(p) for p in paths if not Path(p).is_dir()]
        if folders:
            self.folders_dropped.emit(folders)
        if files:
            self.open_images(files)

    def open_images(self, paths: Iterable[str | Path]) -> None:
        """List files (folders are searched), show the first new one, classify all new ones."""
        files = list(iter_image_files(paths))
        added = self.image_list.add_paths(files)
        if files:
            self._reveal_list()
        if added and self.controller.classify(added):
            self._pending.update(added)
        if files:
            self.show_image(added[0] if added else files[0])

    def show_image(self, path: str | Path) -> None:
        """Select `path` (listing it first if needed) and show its prediction."""
        path = Path(path)
        if path not in self.image_list.paths():
            self.open_images([path])
            return
        if self.image_list.current_path() == path:
            self._on_path_selected(path)
        self.image_list.select_path(path)

    def paste_image(self, image: np.ndarray) -> bool:
        """Classify an in-memory RGB image (a paste); False when no model is loaded."""
        self._pasted = image
        self.image_list.clearSelection()
        self.image_list.setCurrentItem(None)
        if self.controller.model is None:
            self.viewer.clear(NO_MODEL_TEXT)
            return False
        self._awaiting_paste = self.controller.classify_image(image, None)
        self.viewer.clear("Classifying the pasted image…")
        self.predictions.show_message("Classifying…")
        return self._awaiting_paste

    def shown_source(self) -> tuple[Path | None, np.ndarray | None]:
        """What is open here: (the selected file, None), (None, the pasted image) or (None, None)."""
        path = self.image_list.current_path()
        return (path, None) if path is not None else (None, self._pasted)

    # layout ----------------------------------------------------------------------------
    def panel_sizes(self) -> list[int]:
        """The layout worth saving: a hidden list counts with the width it gets when shown,
        not the 0 the splitter reports for it (saved, that 0 would hide the list for good)."""
        sizes = [int(v) for v in self.splitter.sizes()]
        if self.image_list.isHidden():
            sizes[0] = self._list_width
        return sizes

    def restore_panel_sizes(self, saved: list) -> bool:
        """Apply a saved layout if every panel keeps at least its minimum width; else keep the defaults."""
        minimums = [self.image_list.minimumWidth(), MIN_VIEWER_WIDTH, self.side.minimumWidth()]
        if not usable_panel_sizes(saved, minimums):
            return False
        self._list_width = saved[0]
        self.splitter.setSizes(saved)
        return True

    def _remember_list_width(self, *_args: object) -> None:
        if not self.image_list.isHidden() and self.splitter.sizes()[0] > 0:
            self._list_width = self.splitter.sizes()[0]

    def _reveal_list(self) -> None:
        """Show the list with a usable width, taken from the picture (the widest panel)."""
        if not self.image_list.isHidden():
            return
        self.image_list.show()
        sizes = self.splitter.sizes()
        if sizes[0] < self.image_list.minimumWidth() and sum(sizes) > 0:
            width = max(self._list_width, self.image_list.minimumWidth())
            self.splitter.setSizes([width, max(MIN_VIEWER_WIDTH, sizes[1] - width), sizes[2]])

    # controller results ----------------------------------------------------------------
    def _on_model_changed(self, model: LoadedModel) -> None:
        self.model_panel.show_model(model)
        self.unknown_available.emit(model.has_unknown_score)
        self._pending.clear()
        self.image_list.reset_results()
        paths = self.image_list.paths()
        if paths and self.controller.classify(paths):
            self._pending.update(paths)
        current = self.image_list.current_path()
        if current is None and self._pasted is not None:
            self.paste_image(self._pasted)
        elif current is not None:
            self.viewer.clear(f"Classifying {current.name}…")
            self.predictions.show_message("Classifying…")
        else:
            self.viewer.clear(EMPTY_HINT)
            self.predictions.show_message("No image yet. Drop one, open one (Ctrl+O) or paste one (Ctrl+V).")

    def _on_prediction(self, prediction: Prediction) -> None:
        if prediction.path is None:
            if self._awaiting_paste:
                self._awaiting_paste = False
                self._display(prediction)
            return
        self._pending.discard(prediction.path)
        self.image_list.show_result(prediction)
        if prediction.path == self.image_list.current_path():
            self._display(prediction)

    def _on_path_selected(self, path: Path) -> None:
        self._pasted = None
        self._awaiting_paste = False
        prediction = self.controller.cached(path)
        if prediction is not None:
            self._display(prediction)
            return
        if self.controller.model is None:
            self.show_no_model()
            return
        self.viewer.clear(f"Classifying {path.name}…")
        self.predictions.show_message("Classifying…")
        if path not in self._pending and self.controller.classify([path]):
            self._pending.add(path)

    def _display(self, prediction: Prediction) -> None:
        if self.controller.model is not None:  # a cached prediction, judged before the threshold moved
            prediction.judge(self.controller.model.unknown_threshold)
        self.current = prediction
        self.viewer.show_prediction(prediction)
        self.predictions.show_prediction(prediction, show_hint=True)  # every model has maps now
        if prediction.error is None:
            self.model_panel.show_inference_ms(prediction.inference_ms)
            self.inference_time.emit(prediction.inference_ms)
            if prediction.image is not None:
                self.image_shown.emit(prediction.image, prediction.path)

    # the unknown threshold ---------------------------------------------------------------
    def edit_unknown_threshold(self) -> UnknownThresholdDialog | None:
        """Open the threshold dialog (non-modal to tests: they answer it); OK saves it per model file."""
        model = self.controller.model
        if model is None or not model.has_unknown_score or self._host is None:
            return None
        dialog = UnknownThresholdDialog(model, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        settings = self._host.settings
        dialog.finished.connect(
            lambda _code: self._threshold_chosen(model, apply_choice(model, settings, dialog.chosen))
        )
        dialog.open()
        return dialog

    def _threshold_chosen(self, model: LoadedModel, value: float | None | bool) -> None:
        if value is not False and model is self.controller.model:
            self.controller.set_unknown_threshold(value)

    def _on_threshold_changed(self, _threshold: object) -> None:
        """Judge what is shown and listed again from the scores held: nothing is classified again."""
        if self.controller.model is not None:
            self.model_panel.show_unknown(self.controller.model)
        for path in self.image_list.paths():
            cached = self.controller.cached(path)
            if cached is not None and self.controller.model is not None:
                cached.judge(self.controller.model.unknown_threshold)
                self.image_list.show_result(cached)
        if self.current is not None:
            self._display(self.current)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop a forward-pass map being computed, and wait for it (the window is closing)."""
        self.forward_maps.shutdown(timeout_ms)

    def show_no_model(self) -> None:
        self.viewer.clear(EMPTY_HINT if self.image_list.count() == 0 else NO_MODEL_TEXT)
        self.predictions.show_message(NO_MODEL_TEXT)
