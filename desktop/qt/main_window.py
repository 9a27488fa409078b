"""The main window: a shell that lays out the views and wires them to the controller."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from convnet_common.imaging import IMAGE_EXTENSIONS
from desktop.core.batch import iter_image_files
from desktop.core.classifier import Prediction
from desktop.core.model import LoadedModel
from desktop.qt.controller import InferenceController
from desktop.qt.image_list import ImageList
from desktop.qt.image_view import EMPTY_HINT
from desktop.qt.model_panel import NO_MODEL_TEXT, ModelPanel
from desktop.qt.predictions_panel import PredictionsPanel
from desktop.qt.viewer import Viewer

APP_NAME = "ConvNet Studio"
IMAGE_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS)))


class MainWindow(QMainWindow):
    """Routes user actions to the controller and controller results to the views."""

    def __init__(self, provider: str = "auto") -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.resize(1180, 720)
        self.controller = InferenceController(provider, self)
        self._pending: set[Path] = set()

        self.image_list = ImageList()
        self.viewer = Viewer()
        self.predictions = PredictionsPanel()
        self.model_panel = ModelPanel()
        self.notice_bar = QLabel()
        self.notice_bar.setWordWrap(True)
        self.notice_bar.setStyleSheet(
            "QLabel { background: #fff4cc; color: #5a4500; border: 1px solid #e6c95c; padding: 6px; }"
        )
        self.notice_bar.hide()
        self._build_layout()
        self._build_menus()
        self._build_status_bar()

        self.viewer.image_view.files_dropped.connect(self.open_images)
        self.image_list.path_selected.connect(self._on_path_selected)
        self.controller.model_loading.connect(self._on_model_loading)
        self.controller.model_changed.connect(self._on_model_changed)
        self.controller.model_failed.connect(self._on_model_failed)
        self.controller.prediction_ready.connect(self._on_prediction)
        self._show_no_model()

    # layout --------------------------------------------------------------------------
    def _build_layout(self) -> None:
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.notice_bar)
        centre_layout.addWidget(self.viewer, 1)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.predictions)
        side_layout.addWidget(self.model_panel)
        side_layout.addStretch(1)
        side.setMinimumWidth(300)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.image_list)
        splitter.addWidget(centre)
        splitter.addWidget(side)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([190, 650, 340])
        self.setCentralWidget(splitter)
        self.image_list.hide()  # shown once there is something to list

    def _build_menus(self) -> None:
        menu = self.menuBar().addMenu("&File")
        self.open_images_action = QAction("Open &image(s)…", self, shortcut=QKeySequence("Ctrl+O"))
        self.open_images_action.triggered.connect(self._choose_images)
        self.open_model_action = QAction("Open &model…", self, shortcut=QKeySequence("Ctrl+M"))
        self.open_model_action.triggered.connect(self._choose_model)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        menu.addAction(self.open_images_action)
        menu.addAction(self.open_model_action)
        menu.addSeparator()
        menu.addAction(quit_action)

    def _build_status_bar(self) -> None:
        self.model_status = QLabel()
        self.provider_status = QLabel()
        self.time_status = QLabel()
        for label in (self.model_status, self.provider_status, self.time_status):
            self.statusBar().addPermanentWidget(label)

    # actions -------------------------------------------------------------------------
    def show_error(self, title: str, text: str) -> None:
        """Report a problem without blocking the event loop (tests replace this method)."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "", IMAGE_FILTER)
        if files:
            self.open_images([Path(f) for f in files])

    def _choose_model(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Open model", "", "ONNX models (*.onnx);;All files (*)")
        if file:
            self.open_model(Path(file))

    def open_model(self, path: str | Path) -> None:
        """Load a model in the background; the current one stays until the new one works."""
        self.controller.load_model(path)

    def open_images(self, paths: Iterable[str | Path]) -> None:
        """List files (folders are searched), show the first new one, classify all new ones."""
        files = list(iter_image_files(paths))
        added = self.image_list.add_paths(files)
        if files:
            self.image_list.show()
        if added and self.controller.classify(added):
            self._pending.update(added)
        if files:
            self.image_list.select_path(added[0] if added else files[0])

    # controller results ----------------------------------------------------------------
    def _on_model_loading(self, path: str) -> None:
        self.statusBar().showMessage(f"Loading model {Path(path).name}…")

    def _on_model_changed(self, model: LoadedModel) -> None:
        info = model.info
        self.statusBar().clearMessage()
        self.setWindowTitle(f"{APP_NAME} — {info.name}")
        self.model_panel.show_model(model)
        self.model_status.setText(f"Model: {info.name}")
        self.provider_status.setText(f"Provider: {model.provider_in_use}")
        self.time_status.setText("")
        self.notice_bar.setText("\n".join(info.notices))
        self.notice_bar.setVisible(bool(info.notices))
        self._pending.clear()
        self.image_list.reset_results()
        paths = self.image_list.paths()
        if paths and self.controller.classify(paths):
            self._pending.update(paths)
        current = self.image_list.current_path()
        if current is not None:
            self.viewer.clear(f"Classifying {current.name}…")
            self.predictions.show_message("Classifying…")
        else:
            self.viewer.clear(EMPTY_HINT)
            self.predictions.show_message("No image yet.")

    def _on_model_failed(self, path: str, message: str) -> None:
        self.statusBar().clearMessage()
        kept = f"\n\nStill using {self.controller.model.info.name}." if self.controller.model else ""
        self.show_error("Could not open model", f"{path}\n\n{message}{kept}")

    def _on_prediction(self, prediction: Prediction) -> None:
        self._pending.discard(prediction.path)
        self.image_list.show_result(prediction)
        if prediction.path is not None and prediction.path == self.image_list.current_path():
            self._display(prediction)

    def _on_path_selected(self, path: Path) -> None:
        prediction = self.controller.cached(path)
        if prediction is not None:
            self._display(prediction)
            return
        if self.controller.model is None:
            self._show_no_model()
            return
        self.viewer.clear(f"Classifying {path.name}…")
        self.predictions.show_message("Classifying…")
        if path not in self._pending and self.controller.classify([path]):
            self._pending.add(path)

    def _display(self, prediction: Prediction) -> None:
        self.viewer.show_prediction(prediction)
        self.predictions.show_prediction(prediction)
        if prediction.error is None:
            self.time_status.setText(f"Inference: {prediction.inference_ms:.1f} ms")

    def _show_no_model(self) -> None:
        self.viewer.clear(EMPTY_HINT if self.image_list.count() == 0 else NO_MODEL_TEXT)
        self.predictions.show_message(NO_MODEL_TEXT)
        self.model_status.setText("No model loaded")
        self.provider_status.setText("")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.controller.shutdown()
        super().closeEvent(event)
