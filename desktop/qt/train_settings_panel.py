"""The Train tab's settings: network, starting weights, preset, augmentation, advanced options.

A thin view over desktop.core.train_settings: it turns widgets into a `TrainSettings`
(saved next to each run, so a run can be repeated) and into a plain dict for the app's
settings file, and back. The network list comes from `convnet-train models`, which the
tab runs in a worker and hands over with `set_backbones`; until then the combo offers the
CLI's default. ImageNet weights are downloaded by Keras on first use, so the panel says
so, and "none" (from scratch) is offered as what works offline.

The advanced options are the `convnet-train train` flags a user may want to change;
each starts at "default" (the preset's or the CLI's value) and only changed ones reach
the command line, so a preset keeps meaning what it says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.core.train_settings import PRESETS, Backbone, TrainSettings
from desktop.qt.plain_text import PlainLabel, tooltip

DEFAULT_BACKBONE = "mobilenet_v2"
IMAGENET, SCRATCH = "imagenet", "none"
AUGMENT_TAB = "augment-tab"  # the Augment tab's current settings, written as YAML with the run
# The Augment tab's current settings come first and are the default: what the preview
# there shows is what training does, with no step in between.
AUGMENT_CHOICES = (
    (AUGMENT_TAB, "the Augment tab's current settings"),
    ("", "convnet-train's default"),
    ("none", "none"),
    ("light", "light"),
    ("seed", "seed (stronger)"),
)
PRESET_TEXT = {
    "quick": "quick: {epochs}+{fine_tune_epochs} epochs ({scratch_epochs} from scratch)",
    "balanced": "balanced: {epochs}+{fine_tune_epochs} epochs ({scratch_epochs} from scratch)",
    "best": "best: {epochs}+{fine_tune_epochs} epochs ({scratch_epochs} from scratch)",
}


@dataclass(frozen=True)
class Advanced:
    """One advanced option: its CLI name (underscores), label, range and step; the spin
    box's lowest value (one step below `low`) reads "default" and leaves it out."""

    key: str
    label: str
    low: float
    high: float
    step: float = 1
    decimals: int = 0  # 0: a whole number


ADVANCED = (
    Advanced("epochs", "Epochs (stage 1)", 1, 10_000),
    Advanced("fine_tune_epochs", "Fine-tune epochs (stage 2)", 0, 10_000),
    Advanced("learning_rate", "Learning rate", 0.000001, 1.0, 0.0001, 6),
    Advanced("fine_tune_learning_rate", "Fine-tune learning rate", 0.000001, 1.0, 0.00001, 6),
    Advanced("batch_size", "Batch size", 1, 4096),
    Advanced("image_size", "Image size (pixels)", 8, 2048),
    Advanced("seed", "Seed", 0, 2_000_000_000),
    Advanced("val_fraction", "Validation share", 0.01, 0.9, 0.01, 2),
    Advanced("early_stopping_patience", "Early-stopping patience", 0, 1000),
    Advanced("label_smoothing", "Label smoothing", 0.0, 0.5, 0.01, 2),
    Advanced("dropout", "Dropout", 0.0, 0.95, 0.05, 2),
)


def _spin(option: Advanced) -> QAbstractSpinBox:
    if option.decimals:
        box = QDoubleSpinBox()
        box.setDecimals(option.decimals)
    else:
        box = QSpinBox()
    box.setRange(option.low - option.step, option.high)
    box.setSingleStep(option.step)
    box.setSpecialValueText("default")
    box.setValue(box.minimum())
    box.setAccelerated(True)
    return box


class SettingsPanel(QWidget):
    """Widgets for one run's choices; `changed` fires on any edit (for saving)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backbones: dict[str, Backbone] = {}
        self.augment_yaml: Callable[[], str] | None = None  # set by the tab when the Augment tab exists
        self._build()
        self.set_backbones([])

    def _build(self) -> None:
        form = QFormLayout()
        self.backbone_combo = QComboBox()
        self.backbone_combo.setMinimumContentsLength(16)
        self.backbone_combo.currentIndexChanged.connect(self._on_backbone)
        self.backbone_info = PlainLabel("")
        self.backbone_info.setWordWrap(True)
        # two lines kept free: a squeezed form otherwise draws the wrapped text over the combo
        self.backbone_info.setMinimumHeight(2 * self.backbone_info.fontMetrics().lineSpacing() + 4)
        self.weights_combo = QComboBox()
        self.weights_combo.addItem("ImageNet (downloaded once: needs the internet)", IMAGENET)
        self.weights_combo.addItem("none: train from scratch (works offline)", SCRATCH)
        self.weights_combo.currentIndexChanged.connect(self._on_weights)
        self.weights_note = PlainLabel("")
        self.weights_note.setWordWrap(True)
        self.preset_combo = QComboBox()
        for name in PRESETS:
            self.preset_combo.addItem(PRESET_TEXT[name].format(**PRESETS[name]), name)
        self.preset_combo.setCurrentIndex(list(PRESETS).index("balanced"))
        self.preset_combo.setToolTip("Early stopping ends a stage sooner when validation accuracy stops improving")
        self.augment_combo = QComboBox()
        for value, text in AUGMENT_CHOICES:
            self.augment_combo.addItem(text, value)
        self.augment_combo.setToolTip("Random changes to training images; see the Augment tab for a preview")
        form.addRow(PlainLabel("Network"), self.backbone_combo)
        form.addRow(PlainLabel(""), self.backbone_info)
        form.addRow(PlainLabel("Weights"), self.weights_combo)
        form.addRow(PlainLabel(""), self.weights_note)
        form.addRow(PlainLabel("Preset"), self.preset_combo)
        form.addRow(PlainLabel("Augmentation"), self.augment_combo)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.toggled.connect(self.set_advanced_shown)
        self.advanced_box = QWidget()
        advanced_form = QFormLayout(self.advanced_box)
        advanced_form.setContentsMargins(12, 0, 0, 0)
        self.advanced_spins: dict[str, QAbstractSpinBox] = {}
        for option in ADVANCED:
            spin = _spin(option)
            spin.setToolTip(tooltip(f"--{option.key.replace('_', '-')}; lowest value: the preset's or the default"))
            spin.valueChanged.connect(self.changed)
            self.advanced_spins[option.key] = spin
            advanced_form.addRow(PlainLabel(option.label), spin)
        self.advanced_box.setVisible(False)

        for combo in (self.weights_combo, self.preset_combo, self.augment_combo):
            combo.currentIndexChanged.connect(self.changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.advanced_toggle)
        layout.addWidget(self.advanced_box)
        layout.addStretch(1)

    # the network list ------------------------------------------------------------------------------
    def set_backbones(self, backbones: list[Backbone], error: str = "") -> None:
        """Offer these networks (keeping the current choice if it is among them); with none,
        offer the CLI's default so a run can still start, and say why the list is missing."""
        current = self.backbone() or DEFAULT_BACKBONE
        self.backbones = {b.name: b for b in backbones}
        with QSignalBlocker(self.backbone_combo):
            self.backbone_combo.clear()
            for backbone in backbones:
                speed = backbone.columns.get("multiply-adds", "")
                self.backbone_combo.addItem(f"{backbone.name}  ({backbone.input}, {speed or 'speed unknown'})")
                self.backbone_combo.setItemData(self.backbone_combo.count() - 1, backbone.name)
            if not backbones:
                self.backbone_combo.addItem(current, current)
        self.select_backbone(current)
        self._on_backbone()
        if error:
            self.backbone_info.setText(f"The network list is not available: {error}")

    def select_backbone(self, name: str) -> bool:
        index = self.backbone_combo.findData(name)
        if index >= 0:
            self.backbone_combo.setCurrentIndex(index)
        return index >= 0

    def backbone(self) -> str:
        return self.backbone_combo.currentData() or ""

    def pretrained(self) -> bool:
        """Whether the chosen network can start from ImageNet weights (unknown: assume so)."""
        info = self.backbones.get(self.backbone())
        return info.pretrained if info is not None else True

    def _on_backbone(self, *_args: object) -> None:
        info = self.backbones.get(self.backbone())
        if info is None:
            self.backbone_info.setText("")
        else:
            parts = [f"input {info.input}" if info.input else ""]
            parts.append(f"parameters {info.columns.get('parameters', '')}".strip())
            parts.append(f"work per image {info.columns.get('multiply-adds', '')}".strip())
            parts.append(info.columns.get("training", ""))
            self.backbone_info.setText("; ".join(p for p in parts if p and not p.endswith(" ")))
            self.backbone_info.setToolTip(tooltip(info.description))
        imagenet = self.weights_combo.model().item(0)
        imagenet.setEnabled(self.pretrained())
        if not self.pretrained():
            self.weights_combo.setCurrentIndex(1)
        self._on_weights()
        self.changed.emit()

    def _on_weights(self, *_args: object) -> None:
        if not self.pretrained():
            note = "This network is always trained from scratch."
        elif self.weights() == IMAGENET:
            note = "ImageNet weights are downloaded (once) when the run starts; offline, choose none."
        else:
            note = "From scratch: works offline, but needs more data and epochs."
        self.weights_note.setText(note)

    # the rest ----------------------------------------------------------------------------------------
    def weights(self) -> str:
        return self.weights_combo.currentData()

    def preset(self) -> str:
        return self.preset_combo.currentData()

    def augment_choice(self) -> str:
        return self.augment_combo.currentData()

    def set_augment_available(self, available: bool) -> None:
        index = self.augment_combo.findData(AUGMENT_TAB)
        self.augment_combo.model().item(index).setEnabled(available)
        if not available and self.augment_combo.currentIndex() == index:
            self.augment_combo.setCurrentIndex(self.augment_combo.findData(""))

    def set_advanced_shown(self, shown: bool) -> None:
        self.advanced_box.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        if self.advanced_toggle.isChecked() != shown:
            self.advanced_toggle.setChecked(shown)

    def advanced(self) -> dict[str, Any]:
        """The advanced options set to something other than "default"."""
        values = {}
        for option in ADVANCED:
            spin = self.advanced_spins[option.key]
            if spin.value() != spin.minimum():
                values[option.key] = round(spin.value(), option.decimals) if option.decimals else int(spin.value())
        return values

    def set_advanced(self, values: dict[str, Any]) -> None:
        """Set the known options (others, and values of the wrong type, are ignored)."""
        for option in ADVANCED:
            spin = self.advanced_spins[option.key]
            value = values.get(option.key) if isinstance(values, dict) else None
            number_ok = isinstance(value, int | float) and not isinstance(value, bool)
            if number_ok and (option.decimals or float(value).is_integer()):
                spin.setValue(value if option.decimals else int(value))
            else:
                spin.setValue(spin.minimum())

    def train_settings(self, data_dir: str, run_dir: str, augment_file: str | None = None) -> TrainSettings:
        """The run's settings; `augment_file` is where the tab wrote the Augment tab's YAML."""
        choice = self.augment_choice()
        augment = augment_file if choice == AUGMENT_TAB else (choice or None)
        return TrainSettings(
            data_dir=data_dir,
            run_dir=run_dir,
            backbone=self.backbone(),
            weights=self.weights() if self.pretrained() else SCRATCH,
            preset=self.preset(),
            augment=augment,
            advanced=self.advanced(),
        )

    # the app's settings file ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone(),
            "weights": self.weights(),
            "preset": self.preset(),
            "augment": self.augment_choice(),
            "advanced": self.advanced(),
            "advanced_shown": self.advanced_toggle.isChecked(),
        }

    def apply_dict(self, data: Any) -> None:
        """Take back `to_dict`'s values; anything unknown or mistyped keeps the default."""
        if not isinstance(data, dict):
            return
        if isinstance(data.get("backbone"), str) and not self.select_backbone(data["backbone"]) and not self.backbones:
            self.set_backbones([])  # the list is not loaded yet: offer the saved name alone
            self.backbone_combo.setItemText(0, data["backbone"])
            self.backbone_combo.setItemData(0, data["backbone"])
        for combo, key in (
            (self.weights_combo, "weights"),
            (self.preset_combo, "preset"),
            (self.augment_combo, "augment"),
        ):
            index = combo.findData(data.get(key)) if isinstance(data.get(key), str) else -1
            if index >= 0:
                combo.setCurrentIndex(index)
        self.set_advanced(data.get("advanced") or {})
        self.set_advanced_shown(data.get("advanced_shown") is True)
