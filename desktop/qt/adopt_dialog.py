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

from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from convnet_common.imaging import ImageReadError, load_image_rgb
from desktop.core import adoption
from desktop.core.adoption import AdoptChoices, Inspection
from desktop.qt.adopt_worker import AdoptWorker
from desktop.qt.plain_text import PlainLabel

MISSING_STYLE = "background: #fff3bf; color: #5c3c00; border-radius: 3px; padding: 1px 4px;"
ORIGIN_STYLE = "color: palette(mid);"
KIND_NAMES = {
    "onnx": "ONNX model",
    "keras": "Keras model",
    "savedmodel": "TensorFlow SavedModel",
    "teachable_machine": "Teachable Machine export",
    "lobe": "Lobe export",
}
RESIZE_TITLES = {"stretch": "Stretch to the input size", "shorter_side_crop": "Resize shorter side, crop the centre"}


def _spin(low: float, high: float, decimals: int = 6, step: float = 0.01) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setSingleStep(step)
    return spin


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
        self._filling = False
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

        self.layout_combo = QComboBox()
        self.layout_combo.addItems(["nchw", "nhwc"])
        self.layout_combo.setItemText(0, "NCHW (channels first: PyTorch, ONNX zoo)")
        self.layout_combo.setItemText(1, "NHWC (channels last: Keras, TensorFlow)")
        self.height_spin, self.width_spin = QSpinBox(), QSpinBox()
        for spin in (self.height_spin, self.width_spin):
            spin.setRange(1, 8192)
        size_row = self._row(self.height_spin, PlainLabel("×"), self.width_spin)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems([*adoption.MEAN_STD_PRESETS, adoption.CUSTOM_PRESET])
        self.mean_spins = [_spin(-10.0, 10.0) for _ in range(3)]
        self.std_spins = [_spin(0.0, 1000.0) for _ in range(3)]
        self.order_combo = QComboBox()
        self.order_combo.addItems(["RGB", "BGR"])
        self.resize_combo = QComboBox()
        self.resize_combo.addItems(list(RESIZE_TITLES.values()))
        self.crop_spin = _spin(0.05, 1.0, 3, 0.005)
        self.output_combo = QComboBox()
        self.output_combo.addItems(["Logits (a softmax is added)", "Probabilities"])
        self.labels_edit = QPlainTextEdit()
        self.labels_edit.setPlaceholderText("One class name per line (empty: class 0, class 1, …)")
        self.labels_edit.setMaximumHeight(90)

        self.origins: dict[str, QLabel] = {name: PlainLabel("") for name in adoption.SETTING_NAMES}
        for label in self.origins.values():
            label.setWordWrap(True)
        form = QFormLayout()
        rows = [
            ("Input layout", "layout", self.layout_combo),
            ("Input size (H × W)", "input_size", size_row),
            ("Pixel scaling", "mean", self.preset_combo),
            ("Mean (0–1 units)", "mean", self._row(*self.mean_spins)),
            ("Std (0–1 units)", "std", self._row(*self.std_spins)),
            ("Channel order", "channel_order", self.order_combo),
            ("Resize", "resize", self.resize_combo),
            ("Crop fraction", "crop_fraction", self.crop_spin),
            ("Output", "output", self.output_combo),
            ("Class names", "labels", self.labels_edit),
        ]
        shown_origin = set()
        for title, name, field in rows:
            if name in shown_origin or name == "mean" and title == "Pixel scaling":
                form.addRow(title, field)
                continue
            shown_origin.add(name)
            column = QVBoxLayout()
            column.setSpacing(1)
            column.addWidget(field)
            column.addWidget(self.origins[name])
            holder = QWidget()
            holder.setLayout(column)
            column.setContentsMargins(0, 0, 0, 0)
            form.addRow(title, holder)
        settings_box = QGroupBox("Settings")
        settings_box.setLayout(form)

        self.picture = QLabel()
        self.picture.setFixedSize(160, 160)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("border: 1px solid palette(mid);")
        self.picture_button = QPushButton("Choose picture…")
        self.picture_button.clicked.connect(self.choose_picture)
        self.answers = PlainLabel("")
        self.answers.setWordWrap(True)
        self.answers.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.answers.setMinimumWidth(220)
        preview_layout = QVBoxLayout()
        preview_layout.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignHCenter)
        preview_layout.addWidget(PlainLabel("What the model sees"), 0, Qt.AlignmentFlag.AlignHCenter)
        preview_layout.addWidget(self.answers, 1)
        preview_layout.addWidget(self.picture_button)
        preview_box = QGroupBox("Live prediction (the original model)")
        preview_box.setLayout(preview_layout)

        middle = QHBoxLayout()
        middle.addWidget(settings_box, 3)
        middle.addWidget(preview_box, 2)

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

        self.preset_combo.activated.connect(self._on_preset)
        for widget, name in (
            (self.layout_combo, "layout"),
            (self.order_combo, "channel_order"),
            (self.resize_combo, "resize"),
            (self.output_combo, "output"),
        ):
            widget.currentIndexChanged.connect(lambda _i, n=name: self._on_edit(n))
        for spin in (self.height_spin, self.width_spin):
            spin.valueChanged.connect(lambda _v: self._on_edit("input_size"))
        for spin in self.mean_spins:
            spin.valueChanged.connect(lambda _v: self._on_edit("mean"))
        for spin in self.std_spins:
            spin.valueChanged.connect(lambda _v: self._on_edit("std"))
        self.crop_spin.valueChanged.connect(lambda _v: self._on_edit("crop_fraction"))
        self.labels_edit.textChanged.connect(lambda: self._on_edit("labels"))

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            row.addWidget(widget)
        return holder

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

    def _set_fields_enabled(self, on: bool) -> None:
        for widget in (
            self.layout_combo,
            self.height_spin,
            self.width_spin,
            self.preset_combo,
            *self.mean_spins,
            *self.std_spins,
            self.order_combo,
            self.resize_combo,
            self.crop_spin,
            self.output_combo,
            self.labels_edit,
            self.save_button,
        ):
            widget.setEnabled(on)
        self.crop_spin.setEnabled(on and self.resize_combo.currentIndex() == 1)

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
        self.set_choices(AdoptChoices.from_inspection(inspection))
        self.edited.clear()
        self._set_fields_enabled(True)
        self._show_origins()
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

    def _show_origins(self) -> None:
        inspection = self.inspection
        missing = {m.setting: m for m in adoption.still_missing(inspection, self.edited)} if inspection else {}
        for name, label in self.origins.items():
            if name in missing:
                label.setText(f"Not recorded in the file — {missing[name].message}")
                label.setStyleSheet(MISSING_STYLE)
            elif name in self.edited:
                label.setText("set here")
                label.setStyleSheet(ORIGIN_STYLE)
            elif inspection is not None and name in inspection.settings:
                label.setText(f"from {inspection.settings[name].origin}")
                label.setStyleSheet(ORIGIN_STYLE)
            else:
                label.setText("default")
                label.setStyleSheet(ORIGIN_STYLE)

    def missing_highlighted(self) -> list[str]:
        """The settings shown as missing (for tests and the status line)."""
        return [name for name, label in self.origins.items() if label.styleSheet() == MISSING_STYLE]

    # fields <-> choices ----------------------------------------------------------------
    def set_choices(self, choices: AdoptChoices) -> None:
        self._filling = True
        try:
            self.layout_combo.setCurrentIndex(adoption.LAYOUTS.index(choices.layout))
            self.height_spin.setValue(choices.input_size[0])
            self.width_spin.setValue(choices.input_size[1])
            for spin, value in zip(self.mean_spins, choices.mean):
                spin.setValue(value)
            for spin, value in zip(self.std_spins, choices.std):
                spin.setValue(value)
            self.preset_combo.setCurrentText(adoption.preset_name(choices.mean, choices.std))
            self.order_combo.setCurrentIndex(adoption.CHANNEL_ORDERS.index(choices.channel_order))
            self.resize_combo.setCurrentIndex(adoption.RESIZES.index(choices.resize))
            self.crop_spin.setValue(choices.crop_fraction)
            self.output_combo.setCurrentIndex(adoption.OUTPUTS.index(choices.output))
            self.labels_edit.setPlainText("\n".join(choices.labels))
        finally:
            self._filling = False

    def choices(self) -> AdoptChoices:
        labels = tuple(line.strip() for line in self.labels_edit.toPlainText().splitlines() if line.strip())
        detected = self.inspection.settings.get("labels") if self.inspection else None
        return AdoptChoices(
            layout=adoption.LAYOUTS[self.layout_combo.currentIndex()],
            input_size=(self.height_spin.value(), self.width_spin.value()),
            mean=tuple(spin.value() for spin in self.mean_spins),
            std=tuple(spin.value() for spin in self.std_spins),
            channel_order=adoption.CHANNEL_ORDERS[self.order_combo.currentIndex()],
            resize=adoption.RESIZES[self.resize_combo.currentIndex()],
            crop_fraction=self.crop_spin.value(),
            output=adoption.OUTPUTS[self.output_combo.currentIndex()],
            labels=labels,
            labels_edited=bool(labels) and (detected is None or list(labels) != list(detected.value)),
        )

    def _on_preset(self, index: int) -> None:
        name = self.preset_combo.itemText(index)
        if name in adoption.MEAN_STD_PRESETS:
            mean, std = adoption.MEAN_STD_PRESETS[name]
            self.set_choices(replace(self.choices(), mean=mean, std=std))
            self._on_edit("mean")
            self._on_edit("std")

    def _on_edit(self, name: str) -> None:
        if self._filling or self.inspection is None:
            return
        self.edited.add(name)
        if name in ("mean", "std"):
            self._filling = True
            self.preset_combo.setCurrentText(adoption.preset_name(*self._mean_std()))
            self._filling = False
        self.crop_spin.setEnabled(self.resize_combo.currentIndex() == 1)
        self._show_origins()
        self.refresh_preview()

    def _mean_std(self):
        return [s.value() for s in self.mean_spins], [s.value() for s in self.std_spins]

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
        if inspection is None or inspection.preview_onnx is None:
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
        lines = [f"{probability * 100:5.1f}%  {name}" for name, probability in result.top_k]
        self.answers.setText("\n".join(lines))
        picture = np.ascontiguousarray(result.model_input)
        height, width = picture.shape[:2]
        qimage = QImage(picture.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        self.picture.setPixmap(
            QPixmap.fromImage(qimage).scaled(
                self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )

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
