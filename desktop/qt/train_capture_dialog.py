"""Capture camera frames into a class of the dataset while a button is held (as Teachable Machine does).

The camera is the Camera tab's own code: a CameraWorker (desktop.qt.camera_worker, over
desktop.core.camera.CameraSession) runs capture on its threads and this dialog only takes
the newest frame when told, so there is one camera loop in the app. Holding "Hold to
record" (or Space, when no text field has the focus) hands each shown frame to a
desktop.core.capture.FrameRecorder, which keeps the chosen number a second and writes
them on its own thread into DATASET/<class>/, atomically and never overwriting; the
count updates as each file lands. Releasing stops.

The class is an existing folder or a new name, checked with the class-folder rules
(look-alike names refused). No camera: the dialog says so and offers Retry; nothing else
is affected. A write that fails (read-only dataset, full disk) stops the recording with
the reason; what was written stays. `captured(int)` says how many images a recording
wrote, so the Train tab rescans its dataset panel.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import QComboBox, QDialog, QPushButton, QVBoxLayout, QWidget

from desktop.core.camera import ENDED, FAILED, RUNNING, CaptureFactory, open_capture
from desktop.core.capture import FORMATS, FRAME_RATES, FrameRecorder, choose_class_folder
from desktop.core.dataset_edits import DatasetEditError, DatasetEdits
from desktop.core.labelling import dataset_classes
from desktop.qt.camera_view import NO_CAMERA
from desktop.qt.camera_worker import CameraWorker
from desktop.qt.image_view import ImageView
from desktop.qt.layout import hbox
from desktop.qt.plain_text import PlainLabel

RECORD_TEXT = "Hold to record (Space)"
DEFAULT_RATE = 5


class RecorderSignals(QObject):
    """The recorder's thread callbacks as signals, queued to the GUI thread."""

    written = Signal(int, str)  # count, path
    failed = Signal(str)


class CaptureDialog(QDialog):
    """Preview a camera and record held-button frames into a dataset class (see the module docstring)."""

    captured = Signal(int)  # images one recording wrote

    def __init__(
        self,
        dataset: Path,
        parent: QWidget | None = None,
        *,
        capture_factory: CaptureFactory = open_capture,
        probe_indices: list[int] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Capture images from the camera")
        self.resize(760, 620)
        self.dataset = Path(dataset)
        self.probe_indices = probe_indices
        self.worker = CameraWorker(capture_factory, self)
        self.recorder: FrameRecorder | None = None
        self.recorder_signals: RecorderSignals | None = None
        self.total_written = 0
        self.frames_shown = 0
        self.camera_running = False
        self._probed = False
        self._build()
        self.worker.frame_ready.connect(self._on_frame_ready)
        self.worker.state_changed.connect(self._on_state_changed)
        self.worker.devices_found.connect(self._on_devices_found)
        self._update()

    def _build(self) -> None:
        self.device_combo = QComboBox()
        self.device_combo.addItem("Looking for cameras…")
        self.retry_button = QPushButton("Find cameras")
        self.class_combo = QComboBox()
        self.class_combo.setEditable(True)
        self.class_combo.addItems(dataset_classes(self.dataset))
        self.class_combo.lineEdit().setPlaceholderText("a class, or a new name")
        self.rate_combo = QComboBox()
        for rate in FRAME_RATES:
            self.rate_combo.addItem(f"{rate} per second", rate)
        self.rate_combo.setCurrentIndex(FRAME_RATES.index(DEFAULT_RATE))
        self.format_combo = QComboBox()
        for fmt in FORMATS:
            self.format_combo.addItem(fmt.upper().replace("JPG", "JPEG"), fmt)
        self.preview = ImageView()
        self.preview.setAcceptDrops(False)
        self.preview.set_hint("Looking for cameras…")
        self.record_button = QPushButton(RECORD_TEXT)
        self.record_button.setMinimumHeight(44)
        self.record_button.setToolTip("Frames are saved while the button (or Space) is held down")
        self.count_label = PlainLabel("")
        self.message_label = PlainLabel("")
        self.message_label.setWordWrap(True)
        self.close_button = QPushButton("Close")
        for button in (self.retry_button, self.record_button, self.close_button):
            button.setAutoDefault(False)
        layout = QVBoxLayout(self)
        layout.addLayout(hbox(PlainLabel("Camera:"), (self.device_combo, 1), self.retry_button))
        layout.addLayout(
            hbox(PlainLabel("Class:"), (self.class_combo, 1), PlainLabel("Rate:"), self.rate_combo, self.format_combo)
        )
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.message_label)
        layout.addLayout(hbox((self.record_button, 1), (self.count_label, 1), self.close_button))

        self.retry_button.clicked.connect(self.find_cameras)
        self.device_combo.activated.connect(lambda _index: self.start_camera())
        self.record_button.pressed.connect(self.start_recording)
        self.record_button.released.connect(self.stop_recording)
        self.close_button.clicked.connect(self.close)

    # the camera ---------------------------------------------------------------------------------
    def find_cameras(self) -> None:
        self._probed = True
        self.device_combo.clear()
        self.device_combo.addItem("Looking for cameras…")
        self.worker.probe(self.probe_indices)

    def start_camera(self) -> None:
        index = self.device_combo.currentData()
        if index is not None:
            self.frames_shown = 0
            self.worker.start(int(index), None)  # no classifier: preview and recording only

    def _on_devices_found(self, indices: list[int]) -> None:
        self.device_combo.clear()
        for index in indices:
            self.device_combo.addItem(f"Camera {index}", index)
        if not indices:
            self.device_combo.addItem(NO_CAMERA)
            self.preview.set_hint(NO_CAMERA)
            self._message(f"{NO_CAMERA}. Plug one in and press Find cameras.", error=True)
        else:
            self._message("")
            self.start_camera()
        self._update()

    def _on_state_changed(self, sid: int, state: str, message: str) -> None:
        if sid != self.worker.session_id:
            return
        self.camera_running = state == RUNNING
        if state in (FAILED, ENDED):  # a camera lost mid-recording keeps what was written
            self.stop_recording()
            self.worker.stop()  # its threads are finishing on their own: join them now
            self._message(message, error=True)
            if self.frames_shown == 0:
                self.preview.set_hint(message)
        self._update()

    def _on_frame_ready(self, sid: int) -> None:
        if sid != self.worker.session_id:
            return
        frame = self.worker.take_frame()
        if frame is None:
            return
        self.frames_shown += 1
        self.preview.set_image(frame.rgb)
        if self.recorder is not None:
            self.recorder.offer(frame.rgb)
        if self.frames_shown == 1:
            self._update()

    # recording ----------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.recorder is not None and self.recorder.recording

    def start_recording(self) -> bool:
        """Begin keeping frames (button pressed / Space down); False, with a message, if it cannot."""
        if self.recorder is not None:
            return True
        if not self.camera_running or self.frames_shown == 0:
            self._message("No camera picture yet: recording needs a running camera.", error=True)
            return False
        name = self.class_combo.currentText().strip()
        if not name:
            self._message("Type a class name, or pick one of the dataset's classes.", error=True)
            return False
        try:
            folder = choose_class_folder(self.dataset, name)
        except ValueError as error:
            self._message(f"Cannot record into {name!r}: {error}", error=True)
            return False
        signals = self.recorder_signals = RecorderSignals(self)
        signals.written.connect(self._on_written)
        signals.failed.connect(self._on_failed)
        self.recorder = FrameRecorder(
            folder,
            self.rate_combo.currentData(),
            fmt=self.format_combo.currentData(),
            on_written=lambda count, path: signals.written.emit(count, str(path)),
            on_failed=signals.failed.emit,
        )
        self.recorder.start()
        self._message("")
        self.count_label.setText(f"Recording into {folder.name}: 0 images")
        self._update()
        return True

    def stop_recording(self) -> int:
        """Stop keeping frames (button released / Space up); the images this recording wrote."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return 0
        recorder.stop()
        self.total_written += recorder.count
        text = f"Recorded {recorder.count} images into {recorder.folder.name} ({self.total_written} this session)"
        self.count_label.setText(text)
        try:  # journaled as additions: the Train tab's undo removes a recording like any other change
            DatasetEdits(self.dataset).record_added(
                recorder.written, source=f"camera {self.device_combo.currentText()}"
            )
        except (DatasetEditError, OSError) as error:
            self._message(f"The images were written but cannot be undone from the app: {error}", error=True)
        if recorder.error:
            self._message(recorder.error + f" The {recorder.count} images written before are kept.", error=True)
        self._update()
        self.captured.emit(recorder.count)
        return recorder.count

    def _on_written(self, count: int, path: str) -> None:
        if self.recorder is not None and self.sender() is self.recorder_signals:
            self.count_label.setText(f"Recording into {Path(path).parent.name}: {count} images")

    def _on_failed(self, message: str) -> None:
        if self.sender() is self.recorder_signals:
            self.record_button.setDown(False)
            self.stop_recording()

    # keys: Space held records, like the button --------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.start_recording()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.stop_recording()
            event.accept()
            return
        super().keyReleaseEvent(event)

    # showing --------------------------------------------------------------------------------------
    def _message(self, text: str, error: bool = False) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet("color: #b3261e;" if error else "")

    def _update(self) -> None:
        self.record_button.setEnabled(self.camera_running and self.frames_shown > 0)
        self.record_button.setText("Recording… (release to stop)" if self.recorder is not None else RECORD_TEXT)
        for widget in (self.class_combo, self.rate_combo, self.format_combo, self.device_combo):
            widget.setEnabled(self.recorder is None)

    # lifecycle ------------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._probed:
            self.find_cameras()

    def shutdown(self) -> bool:
        """Stop recording and the camera, and join their threads."""
        self.stop_recording()
        return self.worker.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    def reject(self) -> None:
        self.shutdown()
        super().reject()
