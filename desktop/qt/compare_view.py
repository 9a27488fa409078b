"""The "Compare" tab: the current model and a second one, side by side on the same image.

The second model is loaded on this view's own thread pool and never replaces the
controller's model. Work is only done while the tab is visible; an image that arrives
while it is hidden is classified when the tab is shown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThreadPool
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from convnet_common.imaging import ImageReadError, load_image_rgb
from desktop.core.classifier import Classifier, Prediction
from desktop.core.model import LoadedModel
from desktop.qt.controller import InferenceController
from desktop.qt.image_view import ImageView
from desktop.qt.model_panel import provider_name
from desktop.qt.predictions_panel import PredictionsPanel
from desktop.qt.workers import BackgroundTask, ClassifyArrayTask, ModelLoadTask

COMPARE_HINT = "Drop an image here, or show one in the Classify tab"


class CompareSide(QObject):
    """One column: model name, top-5 bars, inference time; ignores results of stale requests."""

    def __init__(self, title: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.name = QLabel(f"<b>{title}</b>: no model")
        self.name.setWordWrap(True)
        self.panel = PredictionsPanel(clickable=False)
        self.panel.setTitle(title)
        self.time = QLabel("")
        self.classifier: Classifier | None = None
        self.title = title
        self.generation = 0

    def set_model(self, model: LoadedModel | None) -> None:
        self.classifier = Classifier(model) if model is not None else None
        self.generation += 1
        if model is None:
            self.name.setText(f"<b>{self.title}</b>: no model")
        else:
            self.name.setText(f"<b>{self.title}</b>: {model.info.name} ({provider_name(model.provider_in_use)})")
            self.name.setToolTip(str(model.info.path))
        self.time.setText("")
        self.panel.show_message("No image yet." if model else "No model loaded.")

    def show(self, prediction: Prediction, generation: int) -> None:
        if generation != self.generation:
            return
        self.panel.show_prediction(prediction)
        self.time.setText(f"Inference: {prediction.inference_ms:.1f} ms" if prediction.ok else "")


class CompareView(QWidget):
    """Two models' top-5 predictions for the same image."""

    def __init__(self, controller: InferenceController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._tasks: set[BackgroundTask] = set()
        self._load_request = 0
        self.second_model: LoadedModel | None = None
        self.image: np.ndarray | None = None
        self.image_path: Path | None = None
        self._stale = False
        self.last_dir = ""

        self.preview = ImageView()
        self.preview.set_hint(COMPARE_HINT)
        self.preview.setMinimumSize(240, 180)
        self.load_button = QPushButton("Load second model…")
        self.load_button.setToolTip("Choose the model to compare with the current one (Ctrl+Shift+M)")
        self.status = QLabel("")
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

    # inputs ----------------------------------------------------------------------------
    def set_image(self, image: np.ndarray, path: Path | None = None) -> None:
        """Compare on this image (now if the tab is visible, else when it is shown)."""
        self.image, self.image_path = image, path
        self.preview.set_image(image)
        self._refresh()

    def choose_second_model(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Second model", self.last_dir, "ONNX models (*.onnx);;All files (*)")
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
        if not images:
            return
        try:
            self.set_image(load_image_rgb(images[0]), images[0])
        except ImageReadError as error:
            self.status.setText(f"Could not read {images[0].name}: {error}")

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
        if self.image is None:
            return
        for side in (self.left, self.right):
            if side.classifier is None:
                continue
            side.generation += 1
            side.panel.show_message("Classifying…")
            task = ClassifyArrayTask(side.classifier, self.image, side.generation, self.image_path)
            task.signals.prediction.connect(side.show)
            self._start(task)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self._refresh()

    # housekeeping ----------------------------------------------------------------------
    def _start(self, task: BackgroundTask) -> None:
        self._tasks.add(task)
        task.signals.finished.connect(self._tasks.discard)
        self.pool.start(task)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.pool.waitForDone(timeout_ms)
