"""The capture dialog under pytest-qt, fed by the camera tests' fake capture: hold to record, rate, failures."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from test_camera_core import FakeCapture

from desktop.core import capture
from desktop.core.dataset_edits import DatasetEdits
from desktop.qt.camera_view import NO_CAMERA
from desktop.qt.train_capture_dialog import CaptureDialog

WAIT_MS = 8_000
FRAME_BGR = np.full((48, 64, 3), (0, 0, 220), np.uint8)  # red in RGB


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "colours"
    for name in ("green", "red"):
        (root / name).mkdir(parents=True)
        cv2.imwrite(str(root / name / "x.png"), np.zeros((8, 8, 3), np.uint8))
    return root


def camera_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("camera-")]


def _dialog(qtbot, dataset: Path, **kwargs) -> CaptureDialog:
    kwargs.setdefault("capture_factory", lambda source: FakeCapture(FRAME_BGR, delay=1 / 60))
    dialog = CaptureDialog(dataset, probe_indices=[0], **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _running(qtbot, dialog: CaptureDialog) -> None:
    qtbot.waitUntil(lambda: dialog.frames_shown > 3 and dialog.record_button.isEnabled(), timeout=WAIT_MS)


def test_holding_the_button_records_at_the_chosen_rate(qtbot, dataset: Path) -> None:
    dialog = _dialog(qtbot, dataset)
    _running(qtbot, dialog)
    assert dialog.preview.pixmap() is not None
    dialog.class_combo.setCurrentText("red")
    dialog.rate_combo.setCurrentIndex(dialog.rate_combo.findData(5))
    qtbot.mousePress(dialog.record_button, Qt.MouseButton.LeftButton)
    assert dialog.recording and not dialog.class_combo.isEnabled()
    qtbot.wait(1500)
    qtbot.waitUntil(lambda: "Recording into red:" in dialog.count_label.text(), timeout=WAIT_MS)
    live = int(dialog.count_label.text().split(":")[1].split()[0])
    assert live >= 3
    with qtbot.waitSignal(dialog.captured, timeout=WAIT_MS) as signal:
        qtbot.mouseRelease(dialog.record_button, Qt.MouseButton.LeftButton)
    written = sorted(p for p in (dataset / "red").iterdir() if p.name != "x.png")
    assert signal.args == [len(written)] and 5 <= len(written) <= 10  # 1.5 s at 5 a second
    assert all(p.suffix == ".png" and p.name.startswith("capture-") for p in written)
    assert cv2.imread(str(written[0]))[0, 0].tolist() == [0, 0, 220]
    assert dialog.count_label.text().startswith(f"Recorded {len(written)} images into red")
    assert not dialog.recording and dialog.class_combo.isEnabled()
    qtbot.wait(400)
    assert len(list((dataset / "red").iterdir())) == len(written) + 1  # nothing after release
    dialog.close()
    assert not camera_threads()
    # the recording is journaled like any other addition: undo removes exactly its frames
    report = DatasetEdits(dataset).undo_all()
    assert len(report.undone) == len(written) and not report.problems
    assert [p.name for p in (dataset / "red").iterdir()] == ["x.png"]


def test_space_held_records_into_a_new_class_as_jpeg(qtbot, dataset: Path) -> None:
    dialog = _dialog(qtbot, dataset)
    _running(qtbot, dialog)
    dialog.class_combo.setCurrentText("blue sky")
    dialog.rate_combo.setCurrentIndex(dialog.rate_combo.findData(10))
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("jpg"))
    dialog.preview.setFocus()
    qtbot.keyPress(dialog, Qt.Key.Key_Space)
    assert dialog.recording
    qtbot.waitUntil(lambda: len(list((dataset / "blue sky").glob("*.jpg"))) >= 3, timeout=WAIT_MS)
    qtbot.keyRelease(dialog, Qt.Key.Key_Space)
    assert not dialog.recording
    count = len(list((dataset / "blue sky").iterdir()))
    assert f"Recorded {count} images into blue sky" in dialog.count_label.text()
    dialog.close()


def test_a_look_alike_class_name_is_refused(qtbot, dataset: Path) -> None:
    dialog = _dialog(qtbot, dataset)
    _running(qtbot, dialog)
    dialog.class_combo.setCurrentText("RED")
    qtbot.mousePress(dialog.record_button, Qt.MouseButton.LeftButton)
    assert not dialog.recording and "letter case" in dialog.message_label.text()
    qtbot.mouseRelease(dialog.record_button, Qt.MouseButton.LeftButton)
    assert not (dataset / "RED").exists()
    dialog.close()


def test_a_read_only_destination_stops_with_a_reason_and_keeps_what_was_written(
    qtbot, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = capture.write_bytes_atomic
    calls: list[Path] = []

    def read_only_after_two(path, data):  # chmod does not stop root, so the write is refused here
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        real(path, data)

    monkeypatch.setattr(capture, "write_bytes_atomic", read_only_after_two)
    dialog = _dialog(qtbot, dataset)
    _running(qtbot, dialog)
    dialog.class_combo.setCurrentText("green")
    dialog.rate_combo.setCurrentIndex(dialog.rate_combo.findData(10))
    qtbot.mousePress(dialog.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "read-only" in dialog.message_label.text(), timeout=WAIT_MS)
    assert not dialog.recording and "2 images written before are kept" in dialog.message_label.text()
    qtbot.mouseRelease(dialog.record_button, Qt.MouseButton.LeftButton)
    assert len(list((dataset / "green").iterdir())) == 3  # x.png and the two written
    assert dialog.count_label.text().startswith("Recorded 2 images into green")
    dialog.close()


def test_no_camera_gives_a_clear_message(qtbot, dataset: Path) -> None:
    dialog = _dialog(qtbot, dataset, capture_factory=lambda s: FakeCapture(FRAME_BGR, opened=False))
    qtbot.waitUntil(lambda: NO_CAMERA in dialog.message_label.text(), timeout=WAIT_MS)
    assert not dialog.record_button.isEnabled() and not dialog.start_recording()
    assert dialog.device_combo.currentText() == NO_CAMERA
    dialog.close()
    assert not camera_threads()
