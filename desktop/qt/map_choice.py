"""The "Map:" selector under the viewer: which activation map to draw.

Our own exports always carry Grad-CAM at the last convolutional layer (`cam`), which is
coarse on small inputs (LeNet-5 at 32 px: 10x10 cells). Newer exports of small networks
also carry LayerCAM at an earlier layer (`cam_fine`, e.g. 28x28), exact like Grad-CAM
(training/fine_cam.py, tested against autodiff). Models with no in-graph map get the
approximate forward-pass map (desktop/qt/forward_map_worker.py); for them the selector
names that method and has nothing else to offer.

The user's choice ("gradcam" or "layercam") is remembered in the settings and applies to
every model that offers it; a model without the finer map shows Grad-CAM, and the choice
comes back with the next model that has one. The finer maps are computed on demand
(one extra run for the image shown, not for folder runs) and kept for the last image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QWidget

from desktop.core.classifier import Classifier, Prediction
from desktop.core.messages import first_line
from desktop.core.model import LoadedModel
from desktop.qt.plain_text import PlainLabel

GRADCAM = "gradcam"
LAYERCAM = "layercam"
FORWARD = "forward"
CHOICES = (GRADCAM, LAYERCAM)
SETTINGS_KEY = "map_choice"


def gradcam_title(model: LoadedModel) -> str:
    layer = f", {model.info.cam_layer}" if model.info.cam_layer else ""
    return f"Grad-CAM (last layer{layer})"


def layercam_title(model: LoadedModel) -> str:
    return f"LayerCAM (layer {model.info.cam_fine_layer or 'earlier'}, finer)"


def offered(model: LoadedModel | None) -> list[tuple[str, str]]:
    """(key, title) of the maps `model` can show, in the order the selector lists them."""
    if model is None:
        return []
    if not model.info.has_cam:
        return [(FORWARD, "Approximate (forward passes)")]
    maps = [(GRADCAM, gradcam_title(model))]
    if model.cam_fine_name is not None:
        maps.append((LAYERCAM, layercam_title(model)))
    return maps


class MapChoice(QWidget):
    """The selector, and the maps it stands for: `maps_for(prediction)` gives the viewer
    the [h, w, classes] maps to draw and the method's name for the caption."""

    changed = Signal(str)  # the chosen key, when the user picks another map
    failed = Signal(str)  # a one-line reason the finer map could not be computed

    def __init__(self, model: Callable[[], LoadedModel | None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self.preferred = GRADCAM
        self.combo = QComboBox()
        self.combo.setToolTip(
            "Which activation map to draw: Grad-CAM at the last convolution, or LayerCAM at an "
            "earlier layer (a finer grid, for models exported with one)"
        )
        # Narrow in the controls row (the opacity slider keeps its room); the list shows full titles.
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setMinimumContentsLength(18)
        self.label = PlainLabel("Map:")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.combo)
        self._model_seen: LoadedModel | None = None
        self._fine_cache: tuple[np.ndarray, np.ndarray] | None = None  # (the prediction's image, its maps)
        self.combo.activated.connect(self._on_activated)
        self.refresh()

    @property
    def current(self) -> str | None:
        return self.combo.currentData()

    def set_preferred(self, key: str) -> None:
        """The remembered choice (settings); unknown values fall back to Grad-CAM."""
        self.preferred = key if key in CHOICES else GRADCAM
        self.refresh()

    def select(self, key: str) -> None:
        """Choose a map as the user would (tests, menus)."""
        self.refresh()
        index = self.combo.findData(key)
        if index >= 0:
            self.combo.setCurrentIndex(index)
            self._on_activated(index)

    def refresh(self) -> None:
        """Re-read what the current model offers; called whenever a prediction is shown."""
        model = self._model()
        if model is not self._model_seen:
            self._model_seen, self._fine_cache = model, None
        maps = offered(model)
        keys = [key for key, _ in maps]
        if keys != [self.combo.itemData(i) for i in range(self.combo.count())]:
            self.combo.blockSignals(True)
            self.combo.clear()
            for key, title in maps:
                self.combo.addItem(title, key)
            self.combo.blockSignals(False)
        wanted = self.preferred if self.preferred in keys else (keys[0] if keys else None)
        if wanted is not None:
            self.combo.setCurrentIndex(keys.index(wanted))
        self.combo.setEnabled(len(keys) > 1)
        self.setVisible(bool(keys))

    def _on_activated(self, index: int) -> None:
        key = self.combo.itemData(index)
        if key in CHOICES and key != self.preferred:
            self.preferred = key
            self.changed.emit(key)

    def maps_for(self, prediction: Prediction) -> tuple[np.ndarray | None, str]:
        """The maps to draw for `prediction` and the method's name for the caption.

        Grad-CAM comes with the prediction; LayerCAM is run here for the image shown. If that
        run fails the viewer falls back to Grad-CAM and `failed` says why (the image keeps
        its prediction).
        """
        self.refresh()
        model = self._model()
        if self.current != LAYERCAM or model is None or prediction.image is None or prediction.cam is None:
            return prediction.cam, "Grad-CAM"
        key = prediction.image  # held by the cache, so a new image can never pass for it
        if self._fine_cache is None or self._fine_cache[0] is not key:
            try:
                model_input = Classifier(model).preprocess([prediction.image])
                self._fine_cache = (key, model.fine_maps(model_input)[0])
            except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own types; the map falls back
                self.failed.emit(f"the finer map could not be computed: {first_line(error)}")
                return prediction.cam, "Grad-CAM"
        return self._fine_cache[1], f"LayerCAM, layer {model.info.cam_fine_layer or 'earlier'}"
