"""What the loaded model is: classes, input size, backbone, training, precision, unknown score, calibration, provider, speed."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

from desktop.core.model import LoadedModel
from desktop.qt.plain_text import PlainLabel, tooltip

NO_MODEL_TEXT = "No model loaded — File → Open model… (Ctrl+M)"


def format_size(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


def describe_training(training: dict[str, Any]) -> str:
    """'dataset, N images, E epochs' from whatever the training metadata recorded."""
    if not training:
        return "not recorded"
    parts = []
    if training.get("dataset"):
        parts.append(str(training["dataset"]))
    images = training.get("image_count") or training.get("train_images")
    if isinstance(images, int):
        parts.append(f"{images:,} images")
    if isinstance(training.get("epochs"), int):
        parts.append(f"{training['epochs']} epochs")
    if training.get("weights"):
        parts.append(f"weights: {training['weights']}")
    return ", ".join(parts) or "recorded (no summary fields)"


def describe_unknown(model: LoadedModel) -> str:
    """The unknown-score facts: method, threshold in force (and the file's, if overridden), accept rate."""
    spec = model.info.unknown
    if spec is None or model.unknown_threshold is None:
        return "no unknown score"
    threshold = model.unknown_threshold
    text = f"{spec.method}, threshold {threshold:.4g}"
    if model.threshold_override is not None:
        text += f" (yours; the file's is {spec.threshold:.4g})"
    return text + f", accepts {spec.accepted_share(threshold):.0%} of {spec.images:,} validation images"


def describe_calibration(calibration: dict[str, Any] | None) -> str:
    """'temperature, T = 1.7, ECE 0.081 → 0.023' from whichever fields the entry has."""
    if not calibration:
        return "not recorded"
    parts = [str(calibration["method"])] if "method" in calibration else []
    if "temperature" in calibration:
        parts.append(f"T = {calibration['temperature']:.3g}")
    if "ece_before" in calibration and "ece_after" in calibration:
        parts.append(f"ECE {calibration['ece_before']:.3g} → {calibration['ece_after']:.3g}")
    return ", ".join(parts) or "recorded (no summary fields)"


def provider_name(provider: str) -> str:
    return provider.removesuffix("ExecutionProvider")


class ModelPanel(QGroupBox):
    """A read-only summary of the current model's metadata and how it is running."""

    FIELDS = (
        "File",
        "Size",
        "Classes",
        "Input",
        "Backbone",
        "Training",
        "Held-out accuracy",
        "Precision",
        "Exported",
        "Unknown",
        "Calibration",
        "Provider",
        "Last inference",
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model info", parent)
        self.values: dict[str, QLabel] = {}
        layout = QFormLayout(self)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for field in self.FIELDS:
            value = PlainLabel("—")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addRow(PlainLabel(f"{field}:"), value)
            self.values[field] = value
        self.show_model(None)

    def show_model(self, model: LoadedModel | None) -> None:
        if model is None:
            for value in self.values.values():
                value.setText("—")
            self.values["File"].setText("none loaded")
            return
        info = model.info
        labels = info.labels
        preview = ", ".join(labels[:6]) + (", …" if len(labels) > 6 else "")
        accuracy = info.held_out_accuracy
        self.values["File"].setText(info.name)
        self.values["File"].setToolTip(tooltip(str(info.path)))
        self.values["Size"].setText(format_size(info.file_size))
        self.values["Classes"].setText(f"{len(labels)}: {preview}")
        self.values["Classes"].setToolTip(tooltip("\n".join(labels[:200])))
        self.values["Input"].setText(f"{info.input_size[0]} × {info.input_size[1]} RGB")
        self.values["Backbone"].setText(info.backbone or "unknown")
        self.values["Training"].setText(describe_training(info.training))
        self.values["Held-out accuracy"].setText(f"{accuracy * 100:.1f}%" if accuracy is not None else "not recorded")
        self.values["Precision"].setText(info.precision or "unknown")
        self.values["Exported"].setText(info.exported_at or "unknown")
        self.show_unknown(model)
        self.values["Calibration"].setText(describe_calibration(info.calibration))
        self.values["Provider"].setText(provider_name(model.provider_in_use))
        self.values["Last inference"].setText("—")

    def show_unknown(self, model: LoadedModel) -> None:
        """The unknown-score line, again after the user moved the threshold."""
        self.values["Unknown"].setText(describe_unknown(model))

    def show_inference_ms(self, milliseconds: float | None) -> None:
        self.values["Last inference"].setText(f"{milliseconds:.1f} ms" if milliseconds is not None else "—")
