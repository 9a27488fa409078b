"""The Train tab's two ways to grow the dataset from the window, as one row under the dataset panel.

"Label new images…" opens the LabelDialog (desktop.qt.train_label_dialog) with the app's
current model; "Capture from camera…" opens the CaptureDialog (desktop.qt.train_capture_dialog).
Both act on the dataset the panel shows, and the panel rescans when either changed it.
Kept out of train_view.py so the tab only places this row and shuts it down.
"""

from __future__ import annotations

from PySide6.QtWidgets import QPushButton, QVBoxLayout, QWidget

from desktop.qt.controller import InferenceController
from desktop.qt.layout import hbox
from desktop.qt.train_capture_dialog import CaptureDialog
from desktop.qt.train_dataset_panel import DatasetPanel
from desktop.qt.train_label_dialog import LabelDialog


class DatasetGrowButtons(QWidget):
    """Label new images… and Capture from camera… for the panel's dataset."""

    def __init__(self, panel: DatasetPanel, controller: InferenceController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.controller = controller
        self.label_dialog: LabelDialog | None = None
        self.capture_dialog: CaptureDialog | None = None
        self.label_button = QPushButton("Label new images…")
        self.label_button.setToolTip("Classify a folder of new images with the model and add them to the dataset")
        self.capture_button = QPushButton("Capture from camera…")
        self.capture_button.setToolTip("Hold a button to record camera frames into a class of the dataset")
        hbox(self.label_button, self.capture_button, parent=self).setContentsMargins(0, 0, 0, 0)
        self.label_button.clicked.connect(self.open_label_dialog)
        self.capture_button.clicked.connect(self.open_capture_dialog)
        panel.dataset_changed.connect(lambda _path: self._update())
        self._update()

    def wrap(self, panel: QWidget) -> QWidget:
        """The panel with this row under it, for the tab's layout."""
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel, 1)
        layout.addWidget(self)
        return box

    def _update(self) -> None:
        has_dataset = self.panel.dataset() is not None
        for button in (self.label_button, self.capture_button):
            button.setEnabled(has_dataset)

    def open_label_dialog(self) -> LabelDialog | None:
        dataset = self.panel.dataset()
        if dataset is None:
            return None
        self._close(self.label_dialog)
        dialog = self.label_dialog = LabelDialog(dataset, self.controller.model, self.controller.provider, self)
        dialog.committed.connect(lambda report: self.panel.rescan() if report.added_count else None)
        dialog.open()
        return dialog

    def open_capture_dialog(self) -> CaptureDialog | None:
        dataset = self.panel.dataset()
        if dataset is None:
            return None
        self._close(self.capture_dialog)
        dialog = self.capture_dialog = CaptureDialog(dataset, self)
        dialog.captured.connect(lambda count: self.panel.rescan() if count else None)
        dialog.open()
        return dialog

    @staticmethod
    def _close(dialog: QWidget | None) -> None:
        if dialog is not None:
            dialog.close()
            dialog.deleteLater()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the dialogs' workers and cameras, so none outlives the window."""
        if self.label_dialog is not None:
            self.label_dialog.shutdown(timeout_ms)
        if self.capture_dialog is not None:
            self.capture_dialog.shutdown()
