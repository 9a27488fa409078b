"""Image view plus the activation-map controls (toggle and opacity)."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from desktop.core.activation import overlay
from desktop.core.classifier import Prediction
from desktop.qt.image_view import ImageView

# Images are composed at a display resolution: big photos are shrunk so the slider stays
# smooth, tiny ones (28x28 digits) are enlarged with nearest-neighbour so they stay
# crisp while the activation map on top of them stays smooth.
DISPLAY_MIN_SIDE = 480
DISPLAY_MAX_SIDE = 1600


def display_base(rgb: np.ndarray) -> np.ndarray:
    """The image at the resolution the view composes overlays at."""
    longest = max(rgb.shape[:2])
    if longest > DISPLAY_MAX_SIDE:
        scale = DISPLAY_MAX_SIDE / longest
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if longest < DISPLAY_MIN_SIDE:
        factor = max(1, DISPLAY_MIN_SIDE // longest)
        return cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    return rgb


class Viewer(QWidget):
    """Shows a prediction's image with the top class's activation map blended on top."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_view = ImageView()
        self.overlay_checkbox = QCheckBox("Activation map")
        self.overlay_checkbox.setChecked(True)
        self.overlay_checkbox.setToolTip("Grad-CAM of the top class: where the network looked")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setToolTip("Activation map opacity")
        self.opacity_label = QLabel("Opacity")
        self.cam_caption = QLabel("")
        self.cam_caption.setStyleSheet("color: palette(mid);")

        self.controls = QWidget()
        controls = QHBoxLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self.overlay_checkbox)
        controls.addSpacing(12)
        controls.addWidget(self.opacity_label)
        controls.addWidget(self.opacity_slider, 1)
        controls.addSpacing(12)
        controls.addWidget(self.cam_caption)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.image_view, 1)
        layout.addWidget(self.controls)

        self._base: np.ndarray | None = None
        self._cam: np.ndarray | None = None
        self.overlay_checkbox.toggled.connect(self._recompose)
        self.opacity_slider.valueChanged.connect(self._recompose)
        self._update_controls()

    @property
    def opacity(self) -> float:
        return self.opacity_slider.value() / 100.0

    def show_prediction(self, prediction: Prediction) -> None:
        if prediction.image is None:
            self.clear(prediction.error or "")
            return
        self._base = display_base(prediction.image)
        index = prediction.top_index
        self._cam = prediction.cam[..., index] if prediction.cam is not None and index is not None else None
        self.cam_caption.setText(f"map for “{prediction.top_label}”" if self._cam is not None else "")
        self._update_controls()
        self._recompose()

    def clear(self, hint: str | None = None) -> None:
        self._base = None
        self._cam = None
        self.cam_caption.setText("")
        if hint is not None:
            self.image_view.set_hint(hint)
        self.image_view.set_image(None)
        self._update_controls()

    def _update_controls(self) -> None:
        """Controls only appear with an image; without a map they are greyed out and say why."""
        available = self._cam is not None
        self.controls.setVisible(self._base is not None)
        self.overlay_checkbox.setEnabled(available)
        self.opacity_slider.setEnabled(available)
        self.opacity_label.setEnabled(available)
        if self._base is not None and not available:
            self.cam_caption.setText("no activation map for this model")

    def _recompose(self) -> None:
        if self._base is None:
            return
        if self._cam is not None and self.overlay_checkbox.isChecked():
            self.image_view.set_image(overlay(self._base, self._cam, self.opacity))
        else:
            self.image_view.set_image(self._base)
