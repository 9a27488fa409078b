"""The Adopt dialog's settings form: one field per adoption setting, with where its value came from.

Each field shows its origin underneath ("from the input tensor's shape", "default", "set
here"); a setting the source does not record is highlighted until the user sets it. The
form turns fields into AdoptChoices and back (desktop/core/adoption.py holds the rules) and
says which setting the user changed (`edited`), so the dialog can refresh its preview.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.core import adoption
from desktop.core.adoption import AdoptChoices, Inspection
from desktop.qt.plain_text import PlainLabel, tooltip

MISSING_STYLE = "background: #fff3bf; color: #5c3c00; border-radius: 3px; padding: 1px 4px;"
ORIGIN_STYLE = "color: palette(dark);"
RESIZE_TITLES = {"stretch": "Stretch to the input size", "shorter_side_crop": "Resize shorter side, crop the centre"}


def origin_text(origin: str) -> str:
    """convnet-train's origin as a caption: "from the input tensor's shape"; "default: …" as it is."""
    return origin if origin.startswith(("default", "made up", "--")) else f"from {origin}"


def _spin(low: float, high: float, decimals: int = 6, step: float = 0.01) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setSingleStep(step)
    return spin


class AdoptSettingsForm(QGroupBox):
    """`edited(name)`: the user changed that setting (never emitted while set_choices fills the form)."""

    edited = Signal(str)

    def __init__(self) -> None:
        super().__init__("Settings")
        self._filling = False
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
        self.setLayout(form)

        self.preset_combo.activated.connect(self._on_preset)
        for widget, name in (
            (self.layout_combo, "layout"),
            (self.order_combo, "channel_order"),
            (self.resize_combo, "resize"),
            (self.output_combo, "output"),
        ):
            widget.currentIndexChanged.connect(lambda _i, n=name: self._changed(n))
        for spin in (self.height_spin, self.width_spin):
            spin.valueChanged.connect(lambda _v: self._changed("input_size"))
        for spin in self.mean_spins:
            spin.valueChanged.connect(lambda _v: self._changed("mean"))
        for spin in self.std_spins:
            spin.valueChanged.connect(lambda _v: self._changed("std"))
        self.crop_spin.valueChanged.connect(lambda _v: self._changed("crop_fraction"))
        self.labels_edit.textChanged.connect(lambda: self._changed("labels"))

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            row.addWidget(widget)
        return holder

    def set_fields_enabled(self, on: bool) -> None:
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
        ):
            widget.setEnabled(on)
        self.crop_spin.setEnabled(on and self.resize_combo.currentIndex() == 1)

    def show_origins(self, inspection: Inspection | None, edited: set[str]) -> None:
        """Under each field: where its value came from, or a highlight when the file does not record it."""
        missing = {m.setting: m for m in adoption.still_missing(inspection, edited)} if inspection else {}
        for name, label in self.origins.items():
            if name in missing:
                label.setText(f"Not recorded in the file: check it ({missing[name].flag})")
                label.setToolTip(tooltip(missing[name].message))
                label.setStyleSheet(MISSING_STYLE)
            elif name in edited:
                label.setToolTip("")
                label.setText("set here")
                label.setStyleSheet(ORIGIN_STYLE)
            elif inspection is not None and name in inspection.settings:
                label.setText(origin_text(inspection.settings[name].origin))
                label.setStyleSheet(ORIGIN_STYLE)
            else:
                label.setText("default")
                label.setStyleSheet(ORIGIN_STYLE)

    def missing_highlighted(self) -> list[str]:
        """The settings shown as missing (for tests and the status line)."""
        return [name for name, label in self.origins.items() if label.styleSheet() == MISSING_STYLE]

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

    def choices(self, detected_labels: list[str] | None = None) -> AdoptChoices:
        """The fields as settings; class names count as edited when they differ from `detected_labels`."""
        labels = tuple(line.strip() for line in self.labels_edit.toPlainText().splitlines() if line.strip())
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
            labels_edited=bool(labels) and list(labels) != list(detected_labels or []),
        )

    def _on_preset(self, index: int) -> None:
        name = self.preset_combo.itemText(index)
        if name in adoption.MEAN_STD_PRESETS:
            mean, std = adoption.MEAN_STD_PRESETS[name]
            self.set_choices(replace(self.choices(), mean=mean, std=std))
            self._changed("mean")
            self._changed("std")

    def _changed(self, name: str) -> None:
        if self._filling:
            return
        if name in ("mean", "std"):
            self._filling = True
            self.preset_combo.setCurrentText(adoption.preset_name(*self._mean_std()))
            self._filling = False
        self.crop_spin.setEnabled(self.isEnabled() and self.resize_combo.currentIndex() == 1)
        self.edited.emit(name)

    def _mean_std(self):
        return [s.value() for s in self.mean_spins], [s.value() for s in self.std_spins]
