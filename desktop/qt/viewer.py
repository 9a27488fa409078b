"""Image view plus the activation-map controls: toggle, opacity, colour map, save as PNG.

The map is the model's own Grad-CAM when the file has one; otherwise, when the view has a
map source (desktop/qt/forward_map_worker.py, set by the Classify tab), one computed from
forward passes, captioned as approximate, with progress while it is computed.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from convnet_common.atomic import write_bytes_atomic
from desktop.core.activation import COLORMAPS, DEFAULT_COLORMAP, colormap_id, encode_png, overlay
from desktop.core.classifier import Prediction
from desktop.qt.image_view import ImageView
from desktop.qt.plain_text import PlainLabel
from desktop.qt.predictions_panel import top_indices

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


def overlay_file_name(image_path: Path | None, label: str) -> str:
    """Default save name: '<image stem>-<class>-map.png', safe on every file system."""
    stem = image_path.stem if image_path is not None else "pasted"
    safe = re.sub(r"[^\w.-]+", "_", f"{stem}-{label}").strip("_") or "overlay"
    return f"{safe}-map.png"


class Viewer(QWidget):
    """Shows a prediction's image with one class's activation map blended on top."""

    saved = Signal(object)  # Path of a written overlay
    save_failed = Signal(str)  # a one-line reason

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_view = ImageView()
        self.overlay_checkbox = QCheckBox("Activation map")
        self.overlay_checkbox.setChecked(True)
        self.overlay_checkbox.setToolTip("Grad-CAM: where the network looked for the selected class (M)")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setToolTip("Activation map opacity")
        self.opacity_label = PlainLabel("Opacity")
        self.colormap_combo = QComboBox()
        self.colormap_combo.addItems(list(COLORMAPS))
        self.colormap_combo.setToolTip("Colour map for the activation map")
        self.save_button = QPushButton("Save overlay…")
        self.save_button.setToolTip("Save the image with the map as PNG (Ctrl+Shift+S)")
        self.cam_caption = PlainLabel("")
        self.cam_caption.setMinimumWidth(120)

        self.controls = QWidget()
        controls = QHBoxLayout(self.controls)
        controls.setContentsMargins(4, 0, 4, 0)
        controls.addWidget(self.overlay_checkbox)
        controls.addSpacing(8)
        controls.addWidget(self.opacity_label)
        controls.addWidget(self.opacity_slider, 1)
        controls.addWidget(self.colormap_combo)
        controls.addWidget(self.save_button)
        caption_row = QHBoxLayout()
        caption_row.setContentsMargins(4, 0, 4, 0)
        caption_row.addWidget(self.cam_caption, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.image_view, 1)
        layout.addLayout(caption_row)
        layout.addWidget(self.controls)

        self.last_save_dir = ""
        self._prediction: Prediction | None = None
        self._base: np.ndarray | None = None
        self._cam: np.ndarray | None = None
        self.class_index: int | None = None
        self.map_source = None  # ForwardMaps, for models without an in-graph map
        self.map_choice = None  # MapChoice (desktop/qt/map_choice.py): which in-graph map to draw
        self._method = "Grad-CAM"  # the in-graph map's method, for the caption
        self._map_status: str | None = None  # the caption of a computed map, or its progress or failure
        self.overlay_checkbox.toggled.connect(self._recompose)
        self.opacity_slider.valueChanged.connect(self._recompose)
        self.colormap_combo.currentTextChanged.connect(self._recompose)
        self.save_button.clicked.connect(self.choose_save_path)
        self._update_controls()

    @property
    def opacity(self) -> float:
        return self.opacity_slider.value() / 100.0

    @property
    def colormap_name(self) -> str:
        return self.colormap_combo.currentText() or DEFAULT_COLORMAP

    def set_colormap(self, name: str) -> None:
        self.colormap_combo.setCurrentText(name if name in COLORMAPS else DEFAULT_COLORMAP)

    def next_colormap(self) -> None:
        names = list(COLORMAPS)
        current = names.index(self.colormap_name) if self.colormap_name in names else -1
        self.set_colormap(names[(current + 1) % len(names)])

    @property
    def opacity_percent(self) -> int:
        return self.opacity_slider.value()

    def set_opacity_percent(self, value: int) -> None:
        self.opacity_slider.setValue(max(0, min(100, value)))

    def nudge_opacity(self, step: int) -> None:
        self.set_opacity_percent(self.opacity_percent + step)

    @property
    def map_shown(self) -> bool:
        return self.overlay_checkbox.isChecked()

    def set_map_shown(self, shown: bool) -> None:
        self.overlay_checkbox.setChecked(shown)

    @property
    def map_shown_changed(self):
        """Emits the new state when the map is shown or hidden, from here or from a menu."""
        return self.overlay_checkbox.toggled

    def current_cam(self) -> np.ndarray | None:
        """The raw [h, w] map on display (None without a map)."""
        return self._cam

    def show_prediction(self, prediction: Prediction) -> None:
        if prediction.image is None:
            self.clear(prediction.error or "")
            return
        self._prediction = prediction
        self._base = display_base(prediction.image)
        self.show_class(prediction.top_index)

    def show_class(self, index: int | None) -> None:
        """Show the map of class `index` (a click in the predictions list)."""
        prediction = self._prediction
        if prediction is None or prediction.image is None:
            return
        self.class_index = index
        maps, self._method = (
            self.map_choice.maps_for(prediction) if self.map_choice is not None else (prediction.cam, "Grad-CAM")
        )
        has_map = maps is not None and index is not None
        self._cam = maps[..., index] if has_map else None
        self._map_status = None
        if not has_map and index is not None and self.map_source is not None:
            computed = self.map_source.request(prediction, index)
            if computed is not None:
                self._cam, self._map_status = computed.values, computed.caption
            elif self.map_source.computing:  # else nothing can be computed: "no activation map"
                self._map_status = "Activation map: computing…"
        self._update_controls()
        self._recompose()

    def set_map_choice(self, choice) -> None:
        """Put the "Map:" selector (a MapChoice) in the map's controls, after the on/off box (the
        caption row keeps its width for the caption); a new choice redraws the map."""
        self.map_choice = choice
        self.controls.layout().insertWidget(2, choice)
        choice.changed.connect(lambda _key: self.show_class(self.class_index))

    def set_map_source(self, source) -> None:
        """Compute maps with `source` (a ForwardMaps) for models without an in-graph one."""
        self.map_source = source
        source.progress.connect(self._on_map_progress)
        source.ready.connect(self._on_computed_map)
        source.failed.connect(self._on_map_failed)

    def _on_map_progress(self, done: int, total: int) -> None:
        if self._cam is None and self._map_status is not None:
            self._map_status = f"Activation map: computing, {done} / {total} forward passes…"
            self._update_controls()

    def _on_computed_map(self, computed) -> None:
        if self._base is not None and self.class_index == computed.key.class_index and self._map_status is not None:
            self._cam, self._map_status = computed.values, computed.caption
            self._update_controls()
            self._recompose()

    def _on_map_failed(self, message: str) -> None:
        if self._map_status is not None:
            self._map_status = f"Activation map unavailable: {message}"
            self._update_controls()

    def clear(self, hint: str | None = None) -> None:
        if self.map_source is not None:
            self.map_source.cancel()
        self._map_status = None
        self._prediction = None
        self._base = None
        self._cam = None
        self.class_index = None
        if hint is not None:
            self.image_view.set_hint(hint)
        self.image_view.set_image(None)
        self._update_controls()

    def class_label(self) -> str:
        """The selected class's name (top-k rows carry names; others fall back to 'class N')."""
        prediction = self._prediction
        if prediction is None or self.class_index is None:
            return ""
        ranked = dict(zip(top_indices(prediction), (label for label, _ in prediction.top_k)))
        return ranked.get(self.class_index, f"class {self.class_index}")

    def _update_controls(self) -> None:
        """Controls only appear with an image; without a map they are greyed out and say why."""
        available = self._cam is not None
        self.controls.setVisible(self._base is not None)
        for widget in (
            self.overlay_checkbox,
            self.opacity_slider,
            self.opacity_label,
            self.colormap_combo,
            self.save_button,
        ):
            widget.setEnabled(available)
        if self._base is None:
            self.cam_caption.setText("")
        elif self._map_status is not None:
            label = self.class_label()
            self.cam_caption.setText(f"{self._map_status} · “{label}”" if available else self._map_status)
        elif not available:
            self.cam_caption.setText("no activation map for this model")
        else:
            probability = float(self._prediction.probabilities[self.class_index])
            self.cam_caption.setText(
                f"Activation map ({self._method}) for “{self.class_label()}” ({probability * 100:.1f}%)"
            )

    def composed(self) -> np.ndarray | None:
        """The RGB image currently displayed (with or without the map)."""
        if self._base is None:
            return None
        if self._cam is not None and self.overlay_checkbox.isChecked():
            return overlay(self._base, self._cam, self.opacity, colormap_id(self.colormap_name), self._map_region())
        return self._base

    def _map_region(self) -> tuple[float, float, float, float] | None:
        """The part of the picture the model saw: a centre-cropping model's map covers only that."""
        return self._prediction.map_region if self._prediction is not None else None

    def _recompose(self) -> None:
        image = self.composed()
        if image is not None:
            self.image_view.set_image(image)

    # saving ---------------------------------------------------------------------------
    def default_save_name(self) -> str:
        path = self._prediction.path if self._prediction is not None else None
        return overlay_file_name(path, self.class_label() or "image")

    def choose_save_path(self) -> None:
        if self._base is None:
            return
        start = str(Path(self.last_save_dir or Path.home()) / self.default_save_name())
        file, _ = QFileDialog.getSaveFileName(self, "Save overlay as PNG", start, "PNG images (*.png)")
        if file:
            try:
                self.save_overlay(Path(file))
            except (OSError, ValueError) as error:
                self.save_failed.emit(f"Could not save {Path(file).name}: {error}")

    def save_overlay(self, path: Path) -> Path:
        """Write the overlay at the original image's resolution, atomically; '.png' is added if missing."""
        if self._prediction is None or self._prediction.image is None:
            raise ValueError("no image to save")
        path = path if path.suffix.lower() == ".png" else path.with_name(path.name + ".png")
        original = self._prediction.image
        # Tiny images (28x28 digits) are saved at display size, where the map is legible.
        original = original if max(original.shape[:2]) >= DISPLAY_MIN_SIDE else self._base
        if self._cam is not None and self.overlay_checkbox.isChecked():
            image = overlay(original, self._cam, self.opacity, colormap_id(self.colormap_name), self._map_region())
        else:
            image = original
        write_bytes_atomic(path, encode_png(image))
        self.last_save_dir = str(path.parent)
        self.saved.emit(path)
        return path
