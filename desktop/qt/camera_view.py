"""The Camera view: live preview of a camera, video file or stream with the model's top classes.

The view only composes and paints. Capture, inference and snapshot writing run on the
`CameraWorker`'s threads, so a slow model, a stalled camera or a slow disk never freeze it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent, QHideEvent, QShowEvent
from PySide6.QtWidgets import QComboBox, QFileDialog, QLineEdit, QPushButton, QVBoxLayout, QWidget

from desktop.core.camera import (
    ENDED,
    FAILED,
    IDLE,
    OPENING,
    RUNNING,
    STOPPED,
    CaptureFactory,
    Frame,
    RateMeter,
    Source,
    describe_source,
    open_capture,
    parse_source,
)
from desktop.core.classifier import Prediction
from desktop.core.model import LoadedModel
from desktop.qt.camera_panels import CameraStats, LiveOptions, MessageBar
from desktop.qt.camera_worker import (
    CameraWorker,
    compose_preview,
    default_snapshot_folder,
    inference_text,
    newest_pair,
)
from desktop.qt.controller import InferenceController
from desktop.qt.image_view import ImageView
from desktop.qt.layout import hbox
from desktop.qt.plain_text import PlainLabel
from desktop.qt.predictions_panel import PredictionsPanel, verdict_text
from desktop.qt.tab_view import MenuEntry, TabView

NO_CAMERA = "No camera found"
NO_MODEL_NOTE = "No model loaded: preview only. Open a model to see predictions."
IDLE_HINT = "Pick a camera and press Start, or play a video file or stream URL."
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.m4v *.mpg *.mpeg *.wmv);;All files (*)"
STATS_INTERVAL_MS = 500


class CameraView(TabView, QWidget):
    """Live capture + classification; drive it with `start_source`, `stop`, `toggle_freeze`, `snapshot`."""

    tab_title = "C&amera"
    tab_shortcut = "Ctrl+3"
    menu_title = "&Camera"  # Alt+M is Model

    def menu_entries(self) -> list[MenuEntry]:
        return [
            MenuEntry("&Find cameras", "Ctrl+Shift+K", self.find_cameras),
            MenuEntry("&Stop camera", "Ctrl+Shift+X", self.stop),
            MenuEntry("F&reeze frame (Space)", "", self.toggle_freeze),
            MenuEntry("Save s&napshot", "Ctrl+Shift+P", self.snapshot),
        ]

    def __init__(
        self,
        controller: InferenceController,
        parent: QWidget | None = None,
        *,
        capture_factory: CaptureFactory = open_capture,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.worker = CameraWorker(capture_factory, self)
        self.snapshot_folder = default_snapshot_folder()
        self.source: Source | None = None
        self.state = IDLE
        self.frame: Frame | None = None  # newest frame shown
        self.prediction: Prediction | None = None  # newest prediction (its .image is the frame it saw)
        self.frozen: tuple[Frame, Prediction | None] | None = None
        self.preview_rate = RateMeter()
        self.frames_shown = 0
        self._probed = False
        self._build()
        self.worker.frame_ready.connect(self._on_frame_ready)
        self.worker.prediction_ready.connect(self._on_prediction_ready)
        self.worker.state_changed.connect(self._on_state_changed)
        self.worker.devices_found.connect(self._on_devices_found)
        self.worker.snapshot_saved.connect(self._on_snapshot_saved)
        self.worker.snapshot_failed.connect(lambda message: self.stats.set_status(message, error=True))
        controller.model_changed.connect(self._on_model_changed)
        self.stats_timer = QTimer(self)
        self.stats_timer.setInterval(STATS_INTERVAL_MS)
        self.stats_timer.timeout.connect(self._update_stats)
        self._update_model_note()
        self._update_controls()

    # layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.device_combo = QComboBox()
        self.device_combo.setMinimumWidth(150)
        self.device_combo.addItem("Looking for cameras…")
        self.refresh_button, self.start_button = QPushButton("Find cameras"), QPushButton("Start")
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("…or a video file / stream URL (rtsp://, http://)")
        self.browse_button, self.play_button = QPushButton("Browse…"), QPushButton("Play")
        self.stop_button = QPushButton("Stop")
        self.message_bar = MessageBar()
        self.image_view = ImageView()
        self.image_view.setAcceptDrops(False)
        self.image_view.set_hint(IDLE_HINT)
        self.predictions = PredictionsPanel()
        self.options = LiveOptions()
        side = QWidget()
        side.setFixedWidth(320)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.predictions, 1)
        side_layout.addWidget(self.options)
        self.stats = CameraStats()
        layout = QVBoxLayout(self)
        layout.addLayout(
            hbox(
                PlainLabel("Camera:"),
                self.device_combo,
                self.refresh_button,
                self.start_button,
                16,
                (self.path_edit, 1),
                self.browse_button,
                self.play_button,
                self.stop_button,
            )
        )
        layout.addWidget(self.message_bar)
        layout.addLayout(hbox((self.image_view, 1), side), 1)
        layout.addWidget(self.stats)
        self.options.show_folder(self.snapshot_folder)

        self.refresh_button.clicked.connect(self.find_cameras)
        self.start_button.clicked.connect(self._start_selected_camera)
        self.browse_button.clicked.connect(self._browse)
        self.play_button.clicked.connect(self._play_path)
        self.path_edit.returnPressed.connect(self._play_path)
        self.path_edit.textChanged.connect(self._update_controls)
        self.stop_button.clicked.connect(self.stop)
        self.options.mirror_checkbox.toggled.connect(self._redraw)
        self.options.overlay_checkbox.toggled.connect(self._redraw)
        self.options.opacity_slider.valueChanged.connect(self._redraw)
        self.options.freeze_button.toggled.connect(self.set_frozen)
        self.options.snapshot_button.clicked.connect(self.snapshot)
        self.options.folder_button.clicked.connect(self._choose_folder)

    # public API ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker.session is not None and self.state in (OPENING, RUNNING)

    def start_source(self, source: int | str) -> None:
        """Open a device index, video file or stream URL and start previewing it."""
        self.set_frozen(False)
        self.source = source
        if isinstance(source, str) and self.path_edit.text().strip() != source:
            self.path_edit.setText(source)
        self.frame = self.prediction = None
        self.frames_shown = 0
        self.preview_rate = RateMeter()
        self.image_view.set_image(None)
        self._update_model_note()
        self._on_state(OPENING, f"Opening {describe_source(source)}…")
        self.worker.start(source, self.controller.classifier)
        self.stats_timer.start()

    def stop(self) -> bool:
        """Stop capture and join its threads (bounded wait); the last frame stays visible."""
        ok = self.worker.stop()
        self.stats_timer.stop()
        if self.state in (OPENING, RUNNING):
            self._on_state(STOPPED, "Stopped.")
        self._update_stats()
        return ok

    def shutdown(self) -> bool:  # type: ignore[override] - joins with the worker's own timeout
        """Stop capture and every helper thread; call before the app quits."""
        self.stop()
        return self.worker.shutdown()

    def find_cameras(self) -> None:
        """Probe device indices on a worker thread; the list fills in when it answers."""
        self._probed = True
        self.device_combo.clear()
        self.device_combo.addItem("Looking for cameras…")
        self._update_controls()
        self.worker.probe()

    def toggle_freeze(self) -> None:  # for a menu action
        self.set_frozen(self.frozen is None)

    def set_frozen(self, frozen: bool) -> None:
        """Hold the newest classified frame with its prediction, or go back to live."""
        if frozen and self.frozen is None:
            self.frozen = newest_pair(self.frame, self.prediction)
        elif not frozen:
            self.frozen = None
        self.options.show_frozen(self.frozen is not None)
        self._show_prediction()
        self._redraw()

    def snapshot(self) -> bool:
        """Save the frozen frame, else the newest classified frame, else the newest frame."""
        pair = self.frozen or newest_pair(self.frame, self.prediction)
        if pair is None:
            self.stats.set_status("Nothing to save yet: start a camera or a video first.", error=True)
            return False
        source = self.source if self.source is not None else ""
        self.worker.save_snapshot(self.snapshot_folder, *pair, source, self.options.mirrored)
        self.stats.set_status("Saving snapshot…")
        return True

    def displayed_image(self) -> np.ndarray | None:
        """The RGB image last painted (after overlay and mirror), for tests."""
        return self._displayed

    # worker signals ---------------------------------------------------------------------------
    def _on_frame_ready(self, sid: int) -> None:
        if sid != self.worker.session_id:
            return
        frame = self.worker.take_frame()
        self.frame = frame or self.frame
        if frame is not None and self.frozen is None:
            self.frames_shown += 1
            self.preview_rate.tick()
            self._redraw()

    def _on_prediction_ready(self, sid: int) -> None:
        if sid != self.worker.session_id:
            return
        taken = self.worker.take_prediction()
        if taken is None or self.controller.classifier is None:
            return
        frame, prediction = taken
        if prediction.image is None:
            prediction.image = frame.rgb
        self.prediction = prediction
        if self.frozen is None:
            self._show_prediction()

    def _on_state_changed(self, sid: int, state: str, message: str) -> None:
        if sid == self.worker.session_id:
            self._on_state(state, message)
            if state in (ENDED, FAILED):
                self.worker.stop()  # the threads are finishing on their own: join them now
                self.stats_timer.stop()
                self._update_stats()

    def _on_devices_found(self, indices: list[int]) -> None:
        self.device_combo.clear()
        for index in indices:
            self.device_combo.addItem(f"Camera {index}", index)
        if not indices:
            self.device_combo.addItem(NO_CAMERA)
            if not self.running and self.state not in (ENDED, FAILED):
                self.message_bar.show_message(
                    f"{NO_CAMERA}. Plug one in and press Retry, or play a video file or URL.",
                    "Retry",
                    self.find_cameras,
                )
                self.image_view.set_hint(NO_CAMERA)
        elif self.state == IDLE:
            self.message_bar.hide()
        self._update_controls()

    def _on_snapshot_saved(self, png: str, sidecar: str) -> None:
        self.stats.set_status(f"Saved {png} and {Path(sidecar).name}")

    def _on_model_changed(self, model: LoadedModel) -> None:
        self.prediction = None
        self.worker.set_classifier(self.controller.classifier)
        self._update_model_note()
        self._redraw()

    # state ------------------------------------------------------------------------------------
    def _on_state(self, state: str, message: str) -> None:
        self.state = state
        if state == OPENING:
            self.image_view.set_hint(message)
            self.message_bar.hide()
        elif state == RUNNING:
            self.message_bar.hide()
        elif state == ENDED:
            self.message_bar.show_message(message, "Restart", self._restart)
        elif state == FAILED:
            self.message_bar.show_message(message, "Retry", self._restart)
            if self.frame is None:
                self.image_view.set_hint(message)
        elif state == STOPPED and self.frame is None:
            self.image_view.set_hint(IDLE_HINT)
        self.stats.set_status(message if state in (OPENING, RUNNING) else "")
        self._update_controls()

    def _restart(self) -> None:
        if self.source is not None:
            self.start_source(self.source)

    def _update_controls(self) -> None:
        has_device, has_frame = self.device_combo.currentData() is not None, self.frame is not None
        for widget, enabled in (
            (self.start_button, has_device),
            (self.device_combo, has_device),
            (self.play_button, bool(self.path_edit.text().strip())),
            (self.stop_button, self.running),
            (self.options.snapshot_button, has_frame),
            (self.options.freeze_button, has_frame),
        ):
            widget.setEnabled(enabled)

    def _update_model_note(self) -> None:
        if self.controller.classifier is None:
            self.predictions.show_message(NO_MODEL_NOTE)
        elif self.frozen is None:
            self.predictions.show_message(f"Model: {self.controller.model.info.name}\nWaiting for a frame…")
        self.options.set_map_available(self.controller.model is not None and self.controller.model.info.has_cam)

    def _update_stats(self) -> None:
        session = self.worker.session
        if self.controller.classifier is None:
            inference = "Inference: no model"
        else:
            inference = inference_text(session.inference_rate.rate() if session is not None else 0.0, self.prediction)
        self.stats.show_rates(
            self.preview_rate.rate(), inference, session.dropped_frames if session is not None else None
        )

    # painting ---------------------------------------------------------------------------------
    _displayed: np.ndarray | None = None

    def _show_prediction(self) -> None:
        prediction = self.frozen[1] if self.frozen is not None else self.prediction
        if self.controller.classifier is None:
            self.predictions.show_message(NO_MODEL_NOTE)
        elif prediction is not None:
            self.predictions.show_prediction(prediction)
            if self.frozen is not None:
                self.predictions.message.setText(f"Frozen — {verdict_text(prediction).lower()}")

    def _redraw(self) -> None:
        """Compose the frame shown: live or frozen, with the top class's map, mirrored if asked."""
        frame, prediction = self.frozen or (self.frame, self.prediction)
        if frame is None:
            return
        image = compose_preview(frame.rgb, prediction, self.options.map_opacity(), self.options.mirrored)
        self._displayed = image
        self.image_view.set_image(image)
        if not self.options.snapshot_button.isEnabled():
            self._update_controls()

    # user actions -----------------------------------------------------------------------------
    def _start_selected_camera(self) -> None:
        index = self.device_combo.currentData()
        if index is not None:
            self.start_source(int(index))

    def _play_path(self) -> None:
        text = self.path_edit.text().strip()
        if text:
            self.start_source(parse_source(text))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Play a video file", "", VIDEO_FILTER)
        if path:
            self.path_edit.setText(path)
            self._play_path()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save snapshots in", str(self.snapshot_folder))
        if folder:
            self.snapshot_folder = Path(folder)
            self.options.show_folder(self.snapshot_folder)

    # lifecycle --------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._probed:
            QTimer.singleShot(0, self.find_cameras)  # first visit only: probing wakes cameras up

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt override
        if self.running:
            self.stop()
            self.message_bar.show_message("Capture stopped while the Camera view was hidden.", "Resume", self._restart)
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)
