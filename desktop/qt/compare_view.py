"""The "Compare" tab: the current model and a second one, side by side on the same image.

The second model is loaded on this view's own thread pool and never replaces the
controller's model. Work is only done while the tab is visible; an image that arrives
while it is hidden is classified when the tab is shown.

An image that came from a file is classified from that file, through the same
`ClassifyTask` -> `Classifier.read_file` -> `decode_for_model` path as the Classify tab
and `convnet-classify`, so one file gives one answer everywhere. Resizing the decoded
display image instead is a second path: a large JPEG is decoded for the model at a
reduced size inside libjpeg, and that input differs from a resize of the full picture.
Only a pasted image, which has no file, is classified as an array (as Classify does too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QFileDialog, QGridLayout, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from desktop.core.classifier import Classifier, Prediction
from desktop.core.model import LoadedModel
from desktop.core.settings import Settings
from desktop.qt.classify_view import ClassifyView
from desktop.qt.controller import InferenceController
from desktop.qt.image_view import ImageView
from desktop.qt.model_panel import provider_name
from desktop.qt.plain_text import PlainLabel, tooltip
from desktop.qt.predictions_panel import PredictionsPanel
from desktop.qt.tab_view import MODEL_MENU, MenuEntry, TabHost, TabView
from desktop.qt.workers import BackgroundTask, ClassifyArrayTask, ClassifyTask, ModelLoadTask, TaskRunner

COMPARE_HINT = "Drop an image here, or show one in the Classify tab"


class CompareSide(QObject):
    """One column: model name, top-5 bars, inference time; ignores results of stale requests."""

    def __init__(self, title: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.name = PlainLabel(f"{title}: no model")  # plain text: the model name comes from a file
        self.name.setWordWrap(True)
        self.panel = PredictionsPanel(clickable=False)
        self.panel.setTitle(title)
        self.time = PlainLabel("")
        self.classifier: Classifier | None = None
        self.title = title
        self.generation = 0
        self.prediction: Prediction | None = None  # the one on display, for tests and tooltips

    def set_model(self, model: LoadedModel | None) -> None:
        self.classifier = Classifier(model) if model is not None else None
        self.generation += 1
        if model is None:
            self.name.setText(f"{self.title}: no model")
        else:
            self.name.setText(f"{self.title}: {model.info.name} ({provider_name(model.provider_in_use)})")
            self.name.setToolTip(tooltip(str(model.info.path)))
        self.time.setText("")
        self.prediction = None
        self.panel.show_message("No image yet." if model else "No model loaded.")

    def show(self, prediction: Prediction, generation: int) -> None:
        if generation != self.generation:
            return
        self.prediction = prediction
        self.panel.show_prediction(prediction)
        self.time.setText(f"Inference: {prediction.inference_ms:.1f} ms" if prediction.ok else "")


class CompareView(TabView, QWidget):
    """Two models' top-5 predictions for the same image (the one shown on Classify, or a dropped one)."""

    tab_title = "Com&pare"
    tab_shortcut = "Ctrl+6"

    def __init__(self, controller: InferenceController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.runner = TaskRunner(2, self)  # its own: the second model never waits on the first's work
        self._load_request = 0
        self.second_model: LoadedModel | None = None
        self.image: np.ndarray | None = None
        self.image_path: Path | None = None
        self._stale = False
        self.last_dir = ""
        self._settings: Settings | None = None

        self.preview = ImageView()
        self.preview.sends_models_to_window = False  # a dropped .onnx is the second model here
        self.preview.set_hint(COMPARE_HINT)
        self.preview.setMinimumSize(240, 180)
        self.load_button = QPushButton("Load second model…")
        self.load_button.setToolTip("Choose the model to compare with the current one (Ctrl+Shift+M)")
        self.status = PlainLabel("")
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # file names and reader messages, never markup
        self.status.setWordWrap(True)
        self.left = CompareSide("Current model", self)
        self.right = CompareSide("Second model", self)

        top = QHBoxLayout()
        top.addWidget(self.load_button)
        top.addWidget(self.status, 1)
        grid = QGridLayout()
        for column, side in enumerate((self.left, self.right)):
            grid.addWidget(side.name, 0, column)
            grid.addWidget(side.panel, 1, column)
            grid.addWidget(side.time, 2, column)
            grid.setColumnStretch(column, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.preview, 1)
        layout.addLayout(grid)

        self.load_button.clicked.connect(self.choose_second_model)
        self.preview.files_dropped.connect(self._on_dropped)
        controller.model_changed.connect(self._on_current_model)
        self.left.set_model(controller.model)
        self.right.set_model(None)

    # the window ------------------------------------------------------------------------
    def menu_entries(self) -> list[MenuEntry]:
        return [MenuEntry("Load &second model to compare…", "Ctrl+Shift+M", self.choose_second_model, menu=MODEL_MENU)]

    def attach(self, host: TabHost) -> None:
        self._settings = host.settings
        host.view(ClassifyView).image_shown.connect(self.set_image)

    def restore_settings(self, settings: Settings) -> None:
        self.last_dir = settings.get("last_model_dir")

    # inputs ----------------------------------------------------------------------------
    def set_image(self, image: np.ndarray | None, path: Path | None = None) -> None:
        """Compare on this image (now if the tab is visible, else when it is shown).

        With a `path` the models read the file themselves (see the module docstring);
        `image` is then only the preview, and may be None until the file is decoded.
        """
        self.image, self.image_path = image, path
        self.preview.set_image(image)
        if image is None:
            self.preview.set_hint(f"Reading {path.name}…" if path is not None else COMPARE_HINT)
        self._refresh()

    def choose_second_model(self) -> None:
        if not self.last_dir and self._settings is not None:  # where the last main model came from
            self.last_dir = self._settings.get("last_model_dir")
        file, _ = QFileDialog.getOpenFileName(
            self, "Second model", self.last_dir, "ONNX models (*.onnx);;All files (*)"
        )
        if file:
            self.load_second_model(Path(file))

    def load_second_model(self, path: Path) -> None:
        """Load the comparison model in the background (same provider as the main one)."""
        self._load_request += 1
        self.last_dir = str(Path(path).parent)
        self.status.setText(f"Loading {Path(path).name}…")
        task = ModelLoadTask(Path(path), self.controller.provider, self._load_request)
        task.signals.model_loaded.connect(self._on_second_loaded)
        task.signals.model_failed.connect(self._on_second_failed)
        self._start(task)

    def _on_dropped(self, files: list[Path]) -> None:
        onnx = [f for f in files if f.suffix.lower() == ".onnx"]
        if onnx:
            self.load_second_model(onnx[0])
        images = [f for f in files if f.suffix.lower() != ".onnx"]
        if images:  # decoded on the workers, with the models' inputs; the preview follows
            self.status.setText("")
            self.set_image(None, images[0])

    # results ---------------------------------------------------------------------------
    def _on_current_model(self, model: LoadedModel) -> None:
        self.left.set_model(model)
        self._refresh()

    def _on_second_loaded(self, model: LoadedModel, request_id: int) -> None:
        if request_id != self._load_request:
            return
        self.second_model = model
        notices = " ".join(model.info.notices)
        self.status.setText(notices)
        self.right.set_model(model)
        self._refresh()

    def _on_second_failed(self, path: str, message: str, request_id: int) -> None:
        if request_id == self._load_request:
            kept = f" Still comparing with {self.second_model.info.name}." if self.second_model else ""
            self.status.setText(f"Could not open {Path(path).name}: {message}{kept}")

    def _refresh(self) -> None:
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        if self.image is None and self.image_path is None:
            return
        for side in (self.left, self.right):
            if side.classifier is None:
                continue
            side.generation += 1
            side.panel.show_message("Classifying…")
            if self.image_path is not None:
                task: BackgroundTask = ClassifyTask(side.classifier, [self.image_path], side.generation)
            else:
                task = ClassifyArrayTask(side.classifier, self.image, side.generation)
            task.signals.prediction.connect(side.show)
            task.signals.prediction.connect(self._on_prediction)
            self._start(task)

    def _on_prediction(self, prediction: Prediction, _generation: int) -> None:
        """A dropped file's preview comes from the first decode of it; an unreadable one says why."""
        if prediction.path is None or prediction.path != self.image_path or self.image is not None:
            return
        if prediction.image is not None:
            self.image = prediction.image
            self.preview.set_image(prediction.image)
        elif prediction.error is not None:
            reason = prediction.error.removeprefix(f"{prediction.path}: ")  # the reader names the file itself
            self.preview.set_hint(COMPARE_HINT)
            self.status.setText(f"Could not read {prediction.path.name}: {reason}")

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self._refresh()

    # housekeeping ----------------------------------------------------------------------
    def _start(self, task: BackgroundTask) -> None:
        self.runner.start(task)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self.runner.shutdown(timeout_ms)
