"""The Camera view under pytest-qt, fed by a video file it writes and by fake captures."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_camera_core import FakeCapture

from desktop.core.camera import ENDED, FAILED, RUNNING
from desktop.qt.camera_view import NO_CAMERA, NO_MODEL_NOTE, CameraView
from desktop.qt.controller import InferenceController

WAIT_MS = 8_000
RED, GREEN = (230, 0, 0), (0, 220, 0)


@pytest.fixture(scope="module")
def red_green_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames of solid red, then 30 of solid green, 64x64 MJPG at 60 fps (1 s of video)."""
    path = tmp_path_factory.mktemp("video") / "red-green.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 60.0, (64, 64))
    assert writer.isOpened()
    for colour in [RED] * 30 + [GREEN] * 30:
        writer.write(np.full((64, 64, 3), colour[::-1], np.uint8))
    writer.release()
    return path


@pytest.fixture
def controller(qtbot):
    ctrl = InferenceController(provider="cpu")
    yield ctrl
    ctrl.shutdown()


def make_view(qtbot, controller, **kwargs) -> CameraView:
    view = CameraView(controller, **kwargs)
    qtbot.addWidget(view)
    view.resize(900, 560)
    view.show()
    return view


@pytest.fixture
def loaded(qtbot, controller, colour_model: Path) -> InferenceController:
    with qtbot.waitSignal(controller.model_changed, timeout=WAIT_MS):
        controller.load_model(colour_model)
    return controller


def camera_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("camera-")]


def top(view: CameraView) -> str | None:
    shown = view.predictions.displayed()
    return shown[0][0] if shown else None


def rate(label) -> float:
    """The fps number in a rate label, 0 while it shows none yet."""
    try:
        return float(label.text().split()[1])
    except (IndexError, ValueError):
        return 0.0


def mean_colour(view: CameraView) -> np.ndarray:
    return view.displayed_image().reshape(-1, 3).mean(axis=0)


def test_video_file_previews_and_classifies_then_ends(qtbot, loaded, red_green_video: Path) -> None:
    view = make_view(qtbot, loaded)
    view.start_source(str(red_green_video))
    qtbot.waitUntil(lambda: top(view) == "red", timeout=WAIT_MS)
    assert view.image_view.pixmap() is not None
    assert mean_colour(view)[0] > 150  # a red frame is on screen
    qtbot.waitUntil(
        lambda: view.stats.preview_fps_label.text() not in ("Preview: –", "Preview: 0.0 fps"), timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: top(view) == "green", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: view.state == ENDED, timeout=WAIT_MS)
    assert view.frames_shown >= 20
    assert "End of video" in view.message_bar.label.text() and view.message_bar.button.text() == "Restart"
    assert "Stale frames skipped" in view.stats.dropped_label.text()
    assert not view.message_bar.isHidden()
    assert not camera_threads()
    view.message_bar.button.click()  # Restart plays it again from the first (red) frame
    qtbot.waitUntil(lambda: view.state == RUNNING, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: top(view) == "red", timeout=WAIT_MS)
    view.stop()
    assert not camera_threads()


def test_fps_labels_update_while_running(qtbot, loaded) -> None:
    frame = np.full((48, 48, 3), (0, 0, 220), np.uint8)
    view = make_view(qtbot, loaded, capture_factory=lambda s: FakeCapture(frame, delay=1 / 60))
    view.start_source(0)
    qtbot.waitUntil(lambda: rate(view.stats.preview_fps_label) > 5, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: rate(view.stats.inference_fps_label) > 1, timeout=WAIT_MS)
    assert view.stats.inference_fps_label.text().endswith("ms)")
    assert top(view) == "red"  # BGR (0,0,220) is red in RGB
    view.stop()


def test_mirror_flips_and_overlay_blends(qtbot, loaded) -> None:
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :32] = RED  # red left half, black right half
    view = make_view(qtbot, loaded, capture_factory=lambda s: FakeCapture(rgb[..., ::-1].copy(), delay=0.02))
    view.options.overlay_checkbox.setChecked(False)
    view.start_source(0)
    qtbot.waitUntil(lambda: top(view) == "red" and view.displayed_image() is not None, timeout=WAIT_MS)
    plain = view.displayed_image()
    assert plain[:, : plain.shape[1] // 4, 0].mean() > 200 and plain[:, -plain.shape[1] // 4 :, 0].mean() < 20
    view.options.mirror_checkbox.setChecked(True)
    mirrored = view.displayed_image()
    assert (
        mirrored[:, : mirrored.shape[1] // 4, 0].mean() < 20 and mirrored[:, -mirrored.shape[1] // 4 :, 0].mean() > 200
    )
    view.options.mirror_checkbox.setChecked(False)
    view.options.overlay_checkbox.setChecked(True)
    assert view.options.overlay_checkbox.isEnabled()
    assert not np.array_equal(view.displayed_image(), plain)  # the map is drawn over the frame
    view.stop()


def test_freeze_holds_frame_and_prediction_and_snapshot_saves_it(
    qtbot, loaded, red_green_video: Path, tmp_path: Path
) -> None:
    view = make_view(qtbot, loaded)
    view.snapshot_folder = tmp_path / "shots"
    view.start_source(str(red_green_video))
    qtbot.waitUntil(lambda: top(view) == "red", timeout=WAIT_MS)
    view.options.freeze_button.click()
    assert view.frozen is not None and view.options.freeze_button.text() == "Unfreeze"
    shown, frozen_image = view.frames_shown, view.displayed_image().copy()
    qtbot.waitUntil(lambda: view.state == ENDED, timeout=WAIT_MS)  # the video plays on into green
    assert view.frames_shown == shown and np.array_equal(view.displayed_image(), frozen_image)
    assert top(view) == "red" and "Frozen" in view.predictions.message.text()
    with qtbot.waitSignal(view.worker.snapshot_saved, timeout=WAIT_MS):
        assert view.snapshot()
    png, sidecar = (
        sorted((tmp_path / "shots").glob("snapshot-*.png"))[0],
        sorted((tmp_path / "shots").glob("*.json"))[0],
    )
    assert json.loads(sidecar.read_text())["top_label"] == "red"
    assert cv2.imread(str(png))[..., 2].mean() > 150  # the red frame, not the later green one
    assert str(png) in view.stats.status_label.text() and sidecar.name in view.stats.status_label.text()
    view.options.freeze_button.click()
    assert view.frozen is None and top(view) == "green"  # live again: the newest result


def test_without_model_previews_only(qtbot, controller, red_green_video: Path) -> None:
    view = make_view(qtbot, controller)
    assert view.predictions.message.text() == NO_MODEL_NOTE
    view.start_source(str(red_green_video))
    qtbot.waitUntil(lambda: view.frames_shown > 3, timeout=WAIT_MS)
    assert view.predictions.message.text() == NO_MODEL_NOTE and top(view) is None
    assert (
        view.stats.inference_fps_label.text() == "Inference: no model"
        or view.stats.inference_fps_label.text() == "Inference: –"
    )
    view.stop()
    assert not camera_threads()


def test_no_camera_state(qtbot, controller) -> None:
    view = make_view(
        qtbot, controller, capture_factory=lambda s: FakeCapture(np.zeros((4, 4, 3), np.uint8), opened=False)
    )
    view.worker.probe([0, 1, 2])
    qtbot.waitUntil(lambda: view.device_combo.currentText() == NO_CAMERA, timeout=WAIT_MS)
    assert NO_CAMERA in view.message_bar.label.text() and view.message_bar.button.text() == "Retry"
    assert not view.start_button.isEnabled()


@pytest.mark.parametrize(
    "source, expected", [(99, "Could not open camera 99"), ("/no/such/clip.avi", "File not found")]
)
def test_bad_sources_fail_clearly_and_quickly(qtbot, controller, source, expected) -> None:
    view = make_view(qtbot, controller)
    started = time.monotonic()
    view.start_source(source)
    qtbot.waitUntil(lambda: view.state == FAILED, timeout=WAIT_MS)
    assert time.monotonic() - started < 5
    assert expected in view.message_bar.label.text() and view.message_bar.button.text() == "Retry"
    assert not camera_threads()


def test_unplugged_mid_stream_then_retry(qtbot, loaded) -> None:
    frame = np.full((32, 32, 3), (0, 200, 0), np.uint8)
    captures: list[FakeCapture] = []

    def factory(source):
        captures.append(FakeCapture(frame, frames=10 if not captures else None, delay=0.01))
        return captures[-1]

    view = make_view(qtbot, loaded, capture_factory=factory)
    view.start_source(0)
    qtbot.waitUntil(lambda: view.state == FAILED, timeout=WAIT_MS)
    assert "Lost camera 0" in view.message_bar.label.text() and captures[0].released
    assert view.image_view.pixmap() is not None  # the last good frame stays up
    view.message_bar.button.click()
    qtbot.waitUntil(lambda: view.state == RUNNING and view.frames_shown > 3, timeout=WAIT_MS)
    assert view.message_bar.isHidden() and len(captures) == 2
    view.close()
    assert captures[1].released and not camera_threads()


def test_hiding_the_view_stops_capture(qtbot, loaded) -> None:
    view = make_view(qtbot, loaded, capture_factory=lambda s: FakeCapture(np.zeros((8, 8, 3), np.uint8)))
    view.start_source(0)
    qtbot.waitUntil(lambda: view.frames_shown > 2, timeout=WAIT_MS)
    view.hide()
    assert not view.running and not camera_threads()
    assert view.message_bar.button.text() == "Resume"


def test_model_change_is_followed(qtbot, controller, colour_model: Path) -> None:
    frame = np.full((32, 32, 3), (0, 200, 0), np.uint8)
    view = make_view(qtbot, controller, capture_factory=lambda s: FakeCapture(frame, delay=0.02))
    view.start_source(0)
    qtbot.waitUntil(lambda: view.frames_shown > 2, timeout=WAIT_MS)
    assert top(view) is None
    with qtbot.waitSignal(controller.model_changed, timeout=WAIT_MS):
        controller.load_model(colour_model)
    qtbot.waitUntil(lambda: top(view) == "green", timeout=WAIT_MS)
    view.stop()
