"""The Camera view's three panels: its message bar, its live-view options and its status line.

Each is plain widgets with the few methods the view calls; what they mean (when to show a
message, what a frozen frame is, how fast the camera runs) stays in desktop/qt/camera_view.py,
which composes them. Kept apart so that view reads as behaviour, not as widget set-up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QCheckBox, QFrame, QGroupBox, QPushButton, QSlider, QVBoxLayout, QWidget

from desktop.qt.layout import hbox
from desktop.qt.plain_text import PlainLabel

# Background, border and text colours: a problem (Retry) is red, anything else (Restart, Resume) blue.
PROBLEM_COLOURS = ("#fde8e6", "#e4a49c", "#6b1d14")
NOTICE_COLOURS = ("#e8f0fd", "#9cb5e4", "#14306b")


class MessageBar(QFrame):
    """A message above the picture with the one button that answers it (Retry, Restart, Resume)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cameraMessage")
        self.label, self.button = PlainLabel(), QPushButton("Retry")
        self.label.setWordWrap(True)
        hbox(self.label, self.button, parent=self).setContentsMargins(8, 4, 8, 4)
        self._action: Callable[[], object] = lambda: None
        self.button.clicked.connect(lambda: self._action())
        self.hide()

    def show_message(self, text: str, button: str, action: Callable[[], object]) -> None:
        """Show `text` with a button labelled `button` that calls `action`."""
        self.label.setText(text)
        self.button.setText(button)
        self._action = action
        colours = PROBLEM_COLOURS if button == "Retry" else NOTICE_COLOURS
        self.setStyleSheet(
            "QFrame#cameraMessage {{ background: {}; border: 1px solid {}; }} QLabel {{ color: {}; }}".format(*colours)
        )
        self.show()


class LiveOptions(QGroupBox):
    """Mirror, activation map and its opacity, freeze, snapshot and the snapshot folder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Live view", parent)
        self.mirror_checkbox = QCheckBox("Mirror preview")
        self.mirror_checkbox.setToolTip("Flip the preview left-right, like a mirror (the model sees the real frame)")
        self.overlay_checkbox = QCheckBox("Activation map")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setToolTip("Activation map opacity")
        self.freeze_button = QPushButton("Freeze")
        self.freeze_button.setCheckable(True)
        self.freeze_button.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.freeze_button.setToolTip("Hold the current frame and its prediction (Space)")
        self.snapshot_button = QPushButton("Save snapshot")
        self.snapshot_button.setToolTip("Save the frame as PNG and its prediction as JSON")
        self.folder_button, self.folder_label = QPushButton("Snapshot folder…"), PlainLabel()
        self.folder_label.setWordWrap(True)
        self.folder_label.setStyleSheet("color: palette(mid);")
        box = QVBoxLayout(self)
        box.addWidget(self.mirror_checkbox)
        box.addLayout(hbox(self.overlay_checkbox, (self.opacity_slider, 1)))
        box.addLayout(hbox(self.freeze_button, self.snapshot_button))
        box.addWidget(self.folder_button)
        box.addWidget(self.folder_label)

    @property
    def mirrored(self) -> bool:
        return self.mirror_checkbox.isChecked()

    def map_opacity(self) -> float:
        """The activation map's opacity, 0 when the map is off or the model has none."""
        shown = self.overlay_checkbox.isChecked() and self.overlay_checkbox.isEnabled()
        return self.opacity_slider.value() / 100.0 if shown else 0.0

    def set_map_available(self, available: bool) -> None:
        self.overlay_checkbox.setEnabled(available)
        self.opacity_slider.setEnabled(available)
        self.overlay_checkbox.setToolTip(
            "Grad-CAM of the top class over the live picture" if available else "This model has no activation maps"
        )

    def show_frozen(self, frozen: bool) -> None:
        """The freeze button's state and text, without sending its toggled signal again."""
        blocked = self.freeze_button.blockSignals(True)
        self.freeze_button.setChecked(frozen)
        self.freeze_button.setText("Unfreeze" if frozen else "Freeze")
        self.freeze_button.blockSignals(blocked)

    def show_folder(self, folder: Path) -> None:
        self.folder_label.setText(f"Saves to {folder}")


class CameraStats(QWidget):
    """The line under the picture: preview and inference rates, stale frames, and a status message."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preview_fps_label, self.inference_fps_label = PlainLabel("Preview: –"), PlainLabel("Inference: –")
        self.dropped_label, self.status_label = PlainLabel(""), PlainLabel("")
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setWordWrap(True)
        row = hbox(
            self.preview_fps_label, 18, self.inference_fps_label, 18, self.dropped_label, 18, (self.status_label, 1)
        )
        row.setContentsMargins(0, 0, 0, 0)
        self.setLayout(row)

    def show_rates(self, preview_fps: float, inference: str, dropped_frames: int | None) -> None:
        """`dropped_frames` None (no capture running) keeps the last count on screen."""
        self.preview_fps_label.setText(f"Preview: {preview_fps:.1f} fps")
        self.inference_fps_label.setText(inference)
        if dropped_frames is not None:
            self.dropped_label.setText(f"Stale frames skipped: {dropped_frames}")

    def set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #b3261e;" if error else "")
