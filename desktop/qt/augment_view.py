"""The Augment tab: what training's random augmentation does to one image, live.

Parameters mirror training/augment.py; the preview itself is desktop.core.augmentation
(OpenCV, no TensorFlow). Decoding, downscaling and the grid run on a private one-thread
pool (desktop.qt.augment_preview_job: too slow to repeat inline on every slider step).
Requests coalesce: at most one job runs, and one more follows with the latest settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QThreadPool, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from convnet_common.atomic import write_text_atomic
from desktop.core import augmentation as aug
from desktop.core.augmentation import AugmentParams
from desktop.core.model import LoadedModel
from desktop.qt.augment_preview_job import PreviewJob, PreviewResult
from desktop.qt.augment_widgets import TILE_COUNT, ParamRow, VariantGrid
from desktop.qt.classify_view import ClassifyView
from desktop.qt.controller import InferenceController
from desktop.qt.drops import FileDrops
from desktop.qt.imageconv import rgb_to_qpixmap
from desktop.qt.plain_text import PlainLabel
from desktop.qt.tab_view import MenuEntry, TabHost, TabView

CUSTOM = "custom"
# (field, label, maximum, step, decimals): the ranges AugmentSpec accepts.
NUMERIC_FIELDS = (
    ("rotation_degrees", "Rotation (±°)", 180.0, 1.0, 0),
    ("width_shift", "Width shift", 0.95, 0.01, 2),
    ("height_shift", "Height shift", 0.95, 0.01, 2),
    ("zoom", "Zoom (±)", 0.95, 0.01, 2),
    ("shear", "Shear", 0.95, 0.01, 2),
    ("brightness", "Brightness (±)", 0.95, 0.01, 2),
    ("contrast", "Contrast (+)", 0.95, 0.01, 2),
)


class AugmentView(FileDrops, TabView, QWidget):
    """Controls on the left, a grid of augmented variants of one image on the right."""

    tab_title = "A&ugment"
    tab_shortcut = "Ctrl+4"
    menu_title = "A&ugment"

    variants_changed = Signal()  # a new grid is on screen
    params_changed = Signal(object)  # AugmentParams
    message_changed = Signal(str)

    def __init__(self, controller: InferenceController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setAcceptDrops(True)
        self._params = AugmentParams()
        self._model_params: AugmentParams | None = None
        self._rng = np.random.default_rng()
        self._units = aug.random_units(self._rng, TILE_COUNT)
        self._source: np.ndarray | None = None
        self._tiles: list[np.ndarray] = []
        self._pending_path: Path | None = None
        self._pending_array: np.ndarray | None = None  # an in-memory image to load (a paste, from Classify)
        self._pending_name = ""
        self._user_chose = False  # the user opened or dropped an image here: stop following Classify
        self._followed: object = None  # the Classify image (path or array) shown, if following
        self._load_id = 0
        self._job: PreviewJob | None = None
        self._dirty = False
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._build()
        controller.model_changed.connect(self._on_model_changed)
        self._on_model_changed(controller.model)
        self._classify: ClassifyView | None = None

    def menu_entries(self) -> list[MenuEntry]:
        return [
            MenuEntry("&Open image…", "Ctrl+Shift+I", self.open_image_dialog),
            MenuEntry("&Reshuffle (Ctrl+Shift+R)", "", self.reshuffle),
            MenuEntry("Use the &model's settings", "Ctrl+Shift+U", self.use_model_settings),
            MenuEntry("&Export as YAML for convnet-train…", "Ctrl+Shift+Y", self.export_yaml),
        ]

    def attach(self, host: TabHost) -> None:
        self._classify = host.view(ClassifyView)
        self.message_changed.connect(lambda message: host.show_status(message, 8000))

    def tab_shown(self) -> None:
        """Show the image open on Classify, unless one was opened or dropped here."""
        if self._classify is not None:
            self.follow_image(*self._classify.shown_source())

    # layout ----------------------------------------------------------------------------
    def _build(self) -> None:
        panel = QWidget()
        panel.setFixedWidth(330)
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 0, 0)
        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self.open_image_dialog)
        self.source_label = PlainLabel("No image")
        self.source_label.setWordWrap(True)
        self.source_label.setTextFormat(Qt.TextFormat.PlainText)  # file names are not markup
        self.original = PlainLabel()  # the untouched source, for comparison with the variants
        self.original.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems([*aug.PRESETS, CUSTOM])
        self.preset_combo.activated.connect(lambda _: self.apply_preset(self.preset_combo.currentText()))
        self.model_button = QPushButton("Use model's settings")
        self.model_button.clicked.connect(self.use_model_settings)
        self.model_note = PlainLabel("No model loaded.")
        self.model_note.setWordWrap(True)
        form = QFormLayout()
        form.addRow(PlainLabel("Preset:"), self.preset_combo)
        self.rows: dict[str, ParamRow] = {}
        for name, label, maximum, step, decimals in NUMERIC_FIELDS:
            row = ParamRow(maximum, step, decimals)
            row.changed.connect(lambda value, name=name: self._set_field(name, value))
            form.addRow(PlainLabel(label + ":"), row)
            self.rows[name] = row
        self.flip_boxes: dict[str, QCheckBox] = {}
        flips = QHBoxLayout()
        for name, label in (("horizontal_flip", "Horizontal"), ("vertical_flip", "Vertical")):
            box = QCheckBox(label)
            box.toggled.connect(lambda on, name=name: self._set_field(name, on))
            flips.addWidget(box)
            self.flip_boxes[name] = box
        form.addRow(PlainLabel("Flips:"), flips)
        self.fill_combo = QComboBox()
        self.fill_combo.addItems(aug.FILL_MODES)
        self.fill_combo.currentTextChanged.connect(lambda mode: self._set_field("fill_mode", mode))
        form.addRow(PlainLabel("Fill mode:"), self.fill_combo)
        self.reshuffle_button = QPushButton("Reshuffle")
        self.reshuffle_button.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.reshuffle_button.setToolTip("New random draws (Ctrl+Shift+R)")
        self.reshuffle_button.clicked.connect(self.reshuffle)
        self.export_button = QPushButton("Export YAML…")
        self.export_button.setToolTip("Save for: convnet-train train --augment FILE.yaml")
        self.export_button.clicked.connect(self.export_yaml)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reshuffle_button)
        buttons.addWidget(self.export_button)
        self.status = PlainLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        for widget in (self.open_button, self.model_note, self.model_button):
            column.addWidget(widget)
        column.addLayout(form)
        column.addLayout(buttons)
        for widget in (self.status, self.source_label, self.original):
            column.addWidget(widget)
        column.addStretch(1)
        self.grid = VariantGrid()
        layout = QHBoxLayout(self)
        layout.addWidget(panel)
        layout.addWidget(self.grid, 1)
        self._show_params()

    # parameters ------------------------------------------------------------------------
    def params(self) -> AugmentParams:
        return self._params

    def set_params(self, params: AugmentParams) -> None:
        """Show `params` in the controls and regenerate the grid with the same draws."""
        if params == self._params:
            self._show_params()
            return
        self._params = params
        self._show_params()
        self.params_changed.emit(params)
        self._schedule()

    def _set_field(self, name: str, value: object) -> None:
        try:
            params = self._params.replace(**{name: value})
        except ValueError as error:  # the controls' ranges should make this unreachable
            self._set_message(str(error))
            return
        self.set_params(params)

    def _show_params(self) -> None:
        for name, row in self.rows.items():
            row.set_value(float(getattr(self._params, name)))
        for name, box in self.flip_boxes.items():
            with QSignalBlocker(box):
                box.setChecked(getattr(self._params, name))
        with QSignalBlocker(self.fill_combo):
            self.fill_combo.setCurrentText(self._params.fill_mode)
        self.preset_combo.setCurrentText(aug.preset_name(self._params) or CUSTOM)
        self.model_button.setEnabled(self._model_params is not None and self._model_params != self._params)

    def apply_preset(self, name: str) -> None:
        if name in aug.PRESETS:
            self.set_params(aug.PRESETS[name])
        else:
            self._show_params()  # "custom" is a label for edited settings, not a preset

    def use_model_settings(self) -> bool:
        """Go back to the loaded model's training augmentation; False when it has none."""
        if self._model_params is None:
            return False
        self.set_params(self._model_params)
        return True

    def _on_model_changed(self, model: LoadedModel | None) -> None:
        if model is None:
            self._model_params = None
            self.model_note.setText("No model loaded.")
            self._show_params()
            return
        self._model_params, note = aug.params_from_metadata(model.info.augmentation)
        if self._model_params is not None:
            name = aug.preset_name(self._model_params)
            note = note.replace("Model's settings", f"Model's settings ({name})" if name else "Model's settings", 1)
            self.model_note.setText(f"{model.info.name}: {note}")
            self.use_model_settings()
        else:
            self.model_note.setText(f"{model.info.name}: {note} Keeping the current settings.")
        self._show_params()

    # image and grid -----------------------------------------------------------------------
    def load_image(self, path: str | Path) -> None:
        """Start previewing `path`, the user's own choice; decoding happens off the GUI thread."""
        self._user_chose = True
        self._start_loading(Path(path), None, Path(path).name)

    def follow_image(self, path: Path | None, image: np.ndarray | None) -> bool:
        """Show the image open on the Classify tab (its file, else a pasted array) unless the
        user picked one here: opening Augment with a photo on screen should not show an
        empty grid. True when a load started."""
        followed = path if path is not None else image
        if (
            self._user_chose
            or followed is None
            or followed is self._followed
            or (path is not None and path == self._followed)
        ):
            return False
        self._followed = followed
        self._start_loading(
            path,
            None if path is not None else image,
            f"{path.name if path is not None else 'the pasted image'}, from Classify",
        )
        return True

    def _start_loading(self, path: Path | None, image: np.ndarray | None, name: str) -> None:
        self._load_id += 1
        self._pending_path, self._pending_array, self._pending_name = path, image, name
        self.source_label.setText(f"Loading {name}…")
        if not self._tiles:
            self.grid.set_hint("Loading…")
        self._schedule()

    def reshuffle(self) -> None:
        """New random draws for every tile, same parameters."""
        self._units = aug.random_units(self._rng, TILE_COUNT)
        self._schedule()

    def tiles(self) -> list[np.ndarray]:
        return list(self._tiles)

    def message(self) -> str:
        return self.status.text()

    def _set_message(self, text: str) -> None:
        self.status.setText(text)
        self.message_changed.emit(text)

    def _schedule(self) -> None:
        self._dirty = True
        if self._job is None:
            self._start_job()

    def _start_job(self) -> None:
        self._dirty = False
        new_array = self._pending_array is not None
        if self._pending_path is None and not new_array and self._source is None:
            return
        source = self._pending_array if new_array else self._source
        self._job = PreviewJob(
            self._load_id, self._pending_path, source, self._params, self._units.copy(), new_array, self._pending_name
        )
        self._job.signals.done.connect(self._on_job_done)
        self._pool.start(self._job)

    def _on_job_done(self, result: PreviewResult) -> None:
        job, self._job = self._job, None
        new_source = job is not None and job.new_source
        if result.load_id == self._load_id:
            if new_source:
                self._pending_path, self._pending_array = None, None
            if result.error:
                self._source, self._tiles = None, []
                self.grid.set_tiles([])
                self.grid.set_hint(f"Cannot preview this file.\n{result.error}")
                self.source_label.setText("No image")
                self.original.clear()
                self._set_message(result.error)
            else:
                if new_source:
                    self._source = result.source
                    height, width = result.source.shape[:2]
                    self.source_label.setText(f"Original: {job.name} (preview {width}×{height})")
                    self.original.setPixmap(
                        rgb_to_qpixmap(result.source).scaled(
                            320, 200, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                        )
                    )
                    self._set_message("")
                self._tiles = result.tiles or []
                self.grid.set_tiles(self._tiles)
                self.variants_changed.emit()
        if self._dirty:
            self._start_job()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Wait for the preview job so none outlives the window."""
        self._pool.waitForDone(timeout_ms)

    # file dialogs and export ---------------------------------------------------------------
    def ask_image_path(self) -> Path | None:
        """Overridden by tests; the real one shows a file dialog."""
        name, _ = QFileDialog.getOpenFileName(
            self, "Open image", "", "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp)"
        )
        return Path(name) if name else None

    def open_image_dialog(self) -> None:
        path = self.ask_image_path()
        if path is not None:
            self.load_image(path)

    def ask_export_path(self) -> Path | None:
        """Overridden by tests; the real one shows a save dialog."""
        name, _ = QFileDialog.getSaveFileName(self, "Export augmentation", "augment.yaml", "YAML (*.yaml *.yml)")
        return Path(name) if name else None

    def export_yaml(self) -> Path | None:
        """Write the settings as the YAML `convnet-train train --augment` reads."""
        path = self.ask_export_path()
        if path is None:
            return None
        try:
            write_text_atomic(path, aug.to_yaml(self._params))
        except OSError as error:
            self._set_message(f"Could not save {path}: {error.strerror or error}")
            return None
        self._set_message(f"Saved {path.name} — use: convnet-train train --augment {path}")
        return path

    # drag and drop ------------------------------------------------------------------------
    # drops (desktop/qt/drops.py) --------------------------------------------------------
    def set_drop_highlight(self, on: bool) -> None:
        self.grid.drag_active = on
        self.grid.update()

    def take_drop(self, paths: list[Path]) -> None:
        self.load_image(paths[0])
