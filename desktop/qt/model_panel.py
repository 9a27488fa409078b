"""What the loaded model is: classes, input size, backbone, held-out accuracy."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

from desktop.core.model import LoadedModel

NO_MODEL_TEXT = "No model loaded — File → Open model…"


def _format_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


class ModelPanel(QGroupBox):
    """A read-only summary of the current model's metadata."""

    FIELDS = ("File", "Classes", "Input", "Backbone", "Held-out accuracy", "Precision", "Exported", "Provider")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
        self.values: dict[str, QLabel] = {}
        layout = QFormLayout(self)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for field in self.FIELDS:
            value = QLabel("—")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addRow(f"{field}:", value)
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
        self.values["File"].setText(f"{info.name} ({_format_size(info.file_size)})")
        self.values["File"].setToolTip(str(info.path))
        self.values["Classes"].setText(f"{len(labels)}: {preview}")
        self.values["Classes"].setToolTip("\n".join(labels[:200]))
        self.values["Input"].setText(f"{info.input_size[0]} × {info.input_size[1]} RGB")
        self.values["Backbone"].setText(info.backbone or "unknown")
        self.values["Held-out accuracy"].setText(f"{accuracy * 100:.1f}%" if accuracy is not None else "not recorded")
        self.values["Precision"].setText(info.precision or "unknown")
        self.values["Exported"].setText(info.exported_at or "unknown")
        self.values["Provider"].setText(model.provider_in_use.removesuffix("ExecutionProvider"))
