"""The Adopt model dialog: bring a classifier from another tool into a ConvNet Studio file.

Opened for a model the app cannot use as it is (a float or NCHW ONNX, a Keras file, a
SavedModel, Teachable Machine or Lobe folder). It shows what `convnet-train adopt
--inspect` found and where each value came from, lets the user set the rest (settings the
file does not record are highlighted until they are touched), and runs the original graph
on the current picture with the settings on screen, so wrong preprocessing shows as a
wrong or unsure answer before anything is written. "Save adopted copy…" runs the real
adopt (never over the source) and the window opens the result. The rules live in
desktop/core/adoption.py and adopt_preview.py; the work runs in desktop/qt/adopt_worker.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from convnet_common.imaging import ImageReadError, load_image_rgb
from desktop.core import adoption
from desktop.core.adoption import AdoptChoices, Inspection
from desktop.qt.adopt_preview_panel import AdoptPreviewPanel
from desktop.qt.adopt_settings_form import ORIGIN_STYLE, AdoptSettingsForm
from desktop.qt.adopt_worker import AdoptWorker
from desktop.qt.plain_text import PlainLabel

FORM_FIELDS = (
    "layout_combo",
    "height_spin",
    "width_spin",
    "preset_combo",
    "mean_spins",
    "std_spins",
    "order_combo",
    "resize_combo",
    "crop_spin",
    "output_combo",
    "labels_edit",
)
KIND_NAMES = {
    "onnx": "ONNX model",
    "keras": "Keras model",
    "savedmodel": "TensorFlow SavedModel",
    "teachable_machine": "Teachable Machine export",
    "lobe": "Lobe export",
}


class AdoptDialog(QDialog):
    """See the module docstring. `adopted(Path)` is emitted when a copy was saved."""

    adopted = Signal(object)

    def __init__(
        self,
        source: Path,
        image: np.ndarray | None = None,
        reason: str | None = None,
        worker: AdoptWorker | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.source = Path(source)
        self.image = image
        self.inspection: Inspection | None = None
        self.edited: set[str] = set()
        self.last_preview = None
        self.setWindowTitle(f"Adopt model — {self.source.name}")
        self.worker = worker or AdoptWorker(self)
        self._build(reason)
        self._connect_worker()
        self._set_fields_enabled(False)
        self.status.setText("Reading the model with convnet-train…")
        self.worker.inspect(self.source)

    # layout ----------------------------------------------------------------------------
    def _build(self, reason: str | None) -> None:
        self.heading = PlainLabel(f"{self.source}")
        self.heading.setWordWrap(True)
        self.heading.setStyleSheet("font-weight: bold;")
        self.reason = PlainLabel(f"ConvNet Studio cannot use this file as it is: {reason}" if reason else "")
        self.reason.setWordWrap(True)
        self.reason.setVisible(bool(reason))
        self.detected = PlainLabel("")
        self.detected.setWordWrap(True)
        self.status = PlainLabel("")
        self.status.setWordWrap(True)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(8)
        self.busy.setTextVisible(False)

        self.form = AdoptSettingsForm()
        self.form.edited.connect(self._on_edit)
        for name in FORM_FIELDS:  # the fields by name, as the tests and the screenshot script reach them
            setattr(self, name, getattr(self.form, name))
        self.origins = self.form.origins
        self.preview_panel = AdoptPreviewPanel()
        self.preview_panel.picture_button.clicked.connect(self.choose_picture)
        self.answers = self.preview_panel.answers

        middle = QHBoxLayout()
        middle.addWidget(self.form, 3)
        middle.addWidget(self.preview_panel, 2)

        self.notes = PlainLabel("")
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet(ORIGIN_STYLE)
        self.save_button = QPushButton("Save adopted copy…")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.choose_save_path)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.clicked.connect(self.cancel_or_close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        for widget in (self.heading, self.reason, self.detected, self.busy):
            layout.addWidget(widget)
        layout.addLayout(middle, 1)
        layout.addWidget(self.notes)
        layout.addLayout(buttons)
        self.resize(940, 640)

    def _connect_worker(self) -> None:
        w = self.worker
        w.inspected.connect(self._on_inspected)
        w.inspect_failed.connect(self._on_inspect_failed)
        w.trainer_missing.connect(self._on_trainer_missing)
        w.preview_ready.connect(self._on_preview)
        w.preview_failed.connect(self._on_preview_failed)
        w.saved.connect(self._on_saved)
        w.save_failed.connect(self._on_save_failed)
        w.save_cancelled.connect(self._on_save_cancelled)

    # the inspection --------------------------------------------------------------------
    def _on_inspected(self, inspection: Inspection) -> None:
        self.inspection = inspection
        self.busy.setVisible(False)
        kind = KIND_NAMES.get(inspection.kind, inspection.kind or "model")
        shape = ", ".join("?" if d is None else str(d) for d in inspection.input_shape)
        classes = f", {inspection.class_count} classes" if inspection.class_count else ""
        self.detected.setText(
            f"Detected: {kind}; input “{inspection.input_name}” {inspection.input_dtype} [{shape}]{classes}"
        )
        self.notes.setText("\n".join(inspection.notes))
        self.form.set_choices(AdoptChoices.from_inspection(inspection))
        self.edited.clear()
        self._set_fields_enabled(True)
        self.form.show_origins(self.inspection, self.edited)
        missing = adoption.still_missing(inspection, self.edited)
        self.status.setText(
            f"Check the highlighted settings ({', '.join(m.setting for m in missing)}): the file does not record them."
            if missing
            else "Everything needed was found in the source. Check the prediction, then save."
        )
        self.refresh_preview()

    def _on_inspect_failed(self, message: str) -> None:
        self.busy.setVisible(False)
        self.status.setText(f"This model cannot be adopted: {message}")

    def _on_trainer_missing(self, missing) -> None:
        self.busy.setVisible(False)
        self.status.setText(
            "Adopting a model needs convnet-train (the training side, with TensorFlow): "
            f"{missing.explanation} The Train tab can install it (Install training support)."
        )

    def _on_edit(self, name: str) -> None:
        if self.inspection is None:
            return
        self.edited.add(name)
        self.form.show_origins(self.inspection, self.edited)
        self.refresh_preview()

    def missing_highlighted(self) -> list[str]:
        return self.form.missing_highlighted()

    def choices(self) -> AdoptChoices:
        detected = self.inspection.settings.get("labels") if self.inspection else None
        return self.form.choices(list(detected.value) if detected is not None else None)

    def _set_fields_enabled(self, on: bool) -> None:
        self.form.set_fields_enabled(on)
        self.save_button.setEnabled(on)

    # preview ---------------------------------------------------------------------------
    def choose_picture(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Picture for the preview", str(self.source.parent))
        if file:
            self.set_picture(Path(file))

    def set_picture(self, path: Path) -> None:
        try:
            self.image = load_image_rgb(path)
        except ImageReadError as error:
            self.answers.setText(str(error))
            return
        self.refresh_preview()

    def refresh_preview(self) -> None:
        inspection = self.inspection
        if inspection is None:
            return
        if inspection.preview_onnx is None or not inspection.preview_onnx.is_file():
            self.answers.setText("No live prediction: convnet-train wrote no preview graph for this source.")
            return
        if self.image is None:
            self.answers.setText("No picture yet: open one on the Classify tab, or choose one here.")
            return
        self.answers.setText("Running the model…")
        choices = self.choices()
        labels = list(choices.labels)
        self.worker.request_preview(inspection.preview_onnx, self.image, choices, labels)

    def _on_preview(self, result) -> None:
        self.last_preview = result
        self.preview_panel.show_result(result)

    def _on_preview_failed(self, message: str) -> None:
        self.last_preview = None
        self.answers.setText(f"No prediction: {message}")

    # save ------------------------------------------------------------------------------
    def default_save_path(self) -> Path:
        return adoption.default_output_path(self.source, adoption.models_folder())

    def choose_save_path(self) -> None:
        start = str(self.default_save_path())
        file, _ = QFileDialog.getSaveFileName(self, "Save adopted copy", start, "ONNX model (*.onnx)")
        if file:
            self.save_to(Path(file) if file.lower().endswith(".onnx") else Path(file + ".onnx"))

    def save_to(self, destination: Path) -> None:
        problems = self.choices().problems()
        if problems:
            self.status.setText(problems[0])
            return
        self._set_fields_enabled(False)
        self.busy.setVisible(True)
        self.cancel_button.setText("Cancel")
        self.status.setText(f"Adopting into {destination.name}: converting and checking against the original…")
        self.worker.save(self.source, destination, self.choices())

    def cancel_or_close(self) -> None:
        if self.worker.saving:
            self.status.setText("Cancelling…")
            self.worker.cancel_save()
        else:
            self.reject()

    def _after_save(self) -> None:
        self.busy.setVisible(False)
        self.cancel_button.setText("Close")
        self._set_fields_enabled(True)

    def _on_saved(self, path: Path) -> None:
        self._after_save()
        self.status.setText(f"Saved {path}")
        self.adopted.emit(path)
        self.accept()

    def _on_save_failed(self, message: str) -> None:
        self._after_save()
        self.status.setText(f"Not saved: {message}")

    def _on_save_cancelled(self) -> None:
        self._after_save()
        self.status.setText("Cancelled; nothing was written.")

    def done(self, result: int) -> None:
        """Closing (any way) kills a running adopt child and removes the preview scratch folder."""
        if self.worker.saving:
            self.worker.cancel_save()
        self.worker.shutdown()
        super().done(result)
