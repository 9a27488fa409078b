"""Qt side of live capture: turns a `CameraSession`'s thread callbacks into signals.

Frames and predictions go through newest-only mailboxes and a signal is sent only when
a mailbox was empty, so at most one notification of each kind is ever queued: a busy
GUI thread skips frames instead of building a backlog. Every signal carries the session
number, so late news from a stopped session is ignored. Nothing here touches a widget
(layout helpers live in desktop/qt/layout.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QStandardPaths, Signal

from desktop.core.activation import overlay
from desktop.core.camera import (
    JOIN_TIMEOUT_S,
    CameraSession,
    CaptureFactory,
    Frame,
    LatestFrameMailbox,
    Source,
    open_capture,
    probe_devices,
    save_snapshot,
)
from desktop.core.classifier import Classifier, Prediction
from desktop.qt.viewer import display_base


def default_snapshot_folder() -> Path:
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return Path(pictures or Path.home()) / "ConvNet Studio"


def newest_pair(frame: Frame | None, prediction: Prediction | None) -> tuple[Frame, Prediction | None] | None:
    """The newest classified frame with its own prediction, else the newest frame alone."""
    if prediction is not None and prediction.image is not None:
        return Frame(prediction.image, -1, 0.0), prediction
    return (frame, None) if frame is not None else None


def compose_preview(rgb: np.ndarray, prediction: Prediction | None, opacity: float, mirror: bool) -> np.ndarray:
    """The picture shown: display-sized, the top class's map blended in (opacity 0: none), mirrored if asked."""
    image = display_base(rgb)
    index = prediction.top_index if prediction is not None and prediction.ok else None
    if opacity > 0 and index is not None and prediction.cam is not None:
        image = overlay(image, prediction.cam[..., index], opacity, region=prediction.map_region)
    return np.ascontiguousarray(image[:, ::-1]) if mirror else image


def inference_text(rate: float, prediction: Prediction | None) -> str:
    if prediction is None:
        return f"Inference: {rate:.1f} fps"
    ms = prediction.inference_ms
    return f"Inference: {rate:.1f} fps ({ms:.{0 if ms >= 10 else 1}f} ms)"


def _emit(signal, *args: object) -> None:
    """Emit from a helper thread; the receiver may already be gone at shutdown."""
    try:
        signal.emit(*args)
    except RuntimeError:
        pass


class CameraWorker(QObject):
    """Runs at most one capture session at a time and reports on the GUI thread."""

    frame_ready = Signal(int)  # session: call take_frame()
    prediction_ready = Signal(int)  # session: call take_prediction()
    state_changed = Signal(int, str, str)  # session, state, message
    devices_found = Signal(list)  # list[int]
    snapshot_saved = Signal(str, str)  # png path, json path
    snapshot_failed = Signal(str)

    def __init__(self, factory: CaptureFactory = open_capture, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.factory = factory
        self.session: CameraSession | None = None
        self.session_id = 0
        self._frames = LatestFrameMailbox()
        self._predictions = LatestFrameMailbox()
        self._helpers: list[threading.Thread] = []
        self._probe_cancel = threading.Event()

    # sessions ----------------------------------------------------------------------------
    def start(self, source: Source, classifier: Classifier | None) -> int:
        """Stop any running session and start `source`; returns the new session number."""
        self.stop()
        self.session_id += 1
        sid = self.session_id
        self._frames = LatestFrameMailbox()
        self._predictions = LatestFrameMailbox()
        frames, predictions = self._frames, self._predictions

        def on_frame(frame: Frame) -> None:
            if frames.put(frame):
                self.frame_ready.emit(sid)

        def on_prediction(frame: Frame, prediction: Prediction) -> None:
            if predictions.put((frame, prediction)):
                self.prediction_ready.emit(sid)

        def on_state(state: str, message: str) -> None:
            self.state_changed.emit(sid, state, message)

        self.session = CameraSession(
            source,
            on_frame=on_frame,
            on_prediction=on_prediction,
            on_state=on_state,
            classifier=classifier,
            factory=self.factory,
        )
        self.session.start()
        return sid

    def stop(self, timeout_s: float = JOIN_TIMEOUT_S) -> bool:
        """Stop the session and join its threads; False if one did not finish in time."""
        session, self.session = self.session, None
        if session is None:
            return True
        self.session_id += 1  # anything the old session still sends is now stale
        return session.stop(timeout_s)

    def take_frame(self) -> Frame | None:
        return self._frames.take(timeout=0)

    def take_prediction(self) -> tuple[Frame, Prediction] | None:
        return self._predictions.take(timeout=0)

    def set_classifier(self, classifier: Classifier | None) -> None:
        self._predictions.take(timeout=0)  # a waiting result from the old model is dropped
        if self.session is not None:
            self.session.set_classifier(classifier)

    # helpers: device probing and snapshots ---------------------------------------------------
    def probe(self, indices: list[int] | None = None) -> None:
        """Find working device indices on a helper thread; answers with `devices_found`."""
        self._probe_cancel.set()
        cancel = self._probe_cancel = threading.Event()

        def work() -> None:
            try:
                found = probe_devices(indices, self.factory, cancel)
            except Exception:  # noqa: BLE001 - a probe failure just finds nothing
                found = []
            if not cancel.is_set():
                _emit(self.devices_found, found)

        self._spawn(work, "camera-probe")

    def save_snapshot(
        self, folder: Path, frame: Frame, prediction: Prediction | None, source: Source, mirrored: bool
    ) -> None:
        """Encode and write on a helper thread (fsync can stall); answers with a signal."""

        def work() -> None:
            try:
                png, sidecar = save_snapshot(
                    folder, frame.rgb, prediction, source, frame_index=frame.index, mirrored_in_preview=mirrored
                )
            except Exception as error:  # noqa: BLE001 - reported to the user
                _emit(self.snapshot_failed, f"Could not save the snapshot in {folder}: {error}")
                return
            _emit(self.snapshot_saved, str(png), str(sidecar))

        self._spawn(work, "camera-snapshot")

    def _spawn(self, target, name: str) -> None:
        self._helpers = [t for t in self._helpers if t.is_alive()]
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._helpers.append(thread)
        thread.start()

    def shutdown(self, timeout_s: float = JOIN_TIMEOUT_S) -> bool:
        """Stop everything and join every thread this worker started."""
        self._probe_cancel.set()
        ok = self.stop(timeout_s)
        for thread in self._helpers:
            thread.join(timeout_s)
        self._helpers = [t for t in self._helpers if t.is_alive()]
        return ok and not self._helpers
