"""Capture logic without Qt: the newest-frame mailbox, rates, sessions over fake captures, snapshots."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnx_factory
import pytest

from desktop.core.camera import (
    ENDED,
    FAILED,
    STOPPED,
    CameraSession,
    LatestFrameMailbox,
    RateMeter,
    parse_source,
    probe_devices,
    save_snapshot,
)
from desktop.core.classifier import Classifier
from desktop.core.model import load_model


class FakeCapture:
    """A camera that gives `frames` frames (then fails), `delay` seconds apart."""

    def __init__(self, frame: np.ndarray, frames: int | None = None, delay: float = 0.005, opened: bool = True):
        self.frame = frame
        self.frames = frames
        self.delay = delay
        self.opened = opened
        self.reads = 0
        self.released = False

    def isOpened(self) -> bool:
        return self.opened and not self.released

    def read(self):
        time.sleep(self.delay)
        self.reads += 1
        if self.frames is not None and self.reads > self.frames:
            return False, None
        return True, self.frame.copy()

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.released = True


def run_session(source, factory, classifier=None, until=lambda events: False, timeout=5.0, **kwargs):
    events: dict[str, list] = {"frames": [], "predictions": [], "states": []}
    done = threading.Event()

    def on_state(state, message):
        events["states"].append((state, message))
        if state in (ENDED, FAILED, STOPPED):
            done.set()

    session = CameraSession(
        source,
        on_frame=events["frames"].append,
        on_prediction=lambda f, p: events["predictions"].append((f, p)),
        on_state=on_state,
        classifier=classifier,
        factory=factory,
        **kwargs,
    )
    session.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done.is_set() and not until(events):
        time.sleep(0.01)
    assert session.stop(2.0), "threads did not stop"
    return session, events


def test_mailbox_keeps_only_the_newest_and_counts_drops() -> None:
    box = LatestFrameMailbox()
    assert box.put(1) is True  # empty before: consumer needs a nudge
    assert box.put(2) is False
    assert box.put(3) is False
    assert box.dropped == 2
    assert box.take(timeout=0) == 3
    assert box.take(timeout=0) is None
    assert box.delivered == 1


def test_mailbox_take_waits_for_a_producer_and_close_wakes_it() -> None:
    box = LatestFrameMailbox()
    threading.Timer(0.05, box.put, args=("late",)).start()
    assert box.take(timeout=2.0) == "late"
    threading.Timer(0.05, box.close).start()
    started = time.monotonic()
    assert box.take(timeout=5.0) is None
    assert time.monotonic() - started < 2.0


def test_slow_consumer_drops_stale_frames() -> None:
    box = LatestFrameMailbox()
    for i in range(100):
        box.put(i)
        if i % 10 == 9:
            assert box.take(timeout=0) == i  # the consumer always sees the newest
    assert box.dropped == 90 and box.delivered == 10


def test_rate_meter() -> None:
    now = [0.0]
    meter = RateMeter(window_s=1.0, clock=lambda: now[0])
    for _ in range(11):
        meter.tick()
        now[0] += 0.1
    assert meter.rate() == pytest.approx(10.0, rel=0.05)
    now[0] += 5.0
    assert meter.rate() == 0.0


def test_parse_source() -> None:
    assert parse_source(" 0 ") == 0
    assert parse_source("rtsp://cam/live") == "rtsp://cam/live"
    assert parse_source('"/tmp/a b.avi"') == "/tmp/a b.avi"


def test_slow_inference_does_not_slow_capture(colour_model: Path) -> None:
    classifier = Classifier(load_model(colour_model, provider="cpu"))
    original = classifier.classify_image
    classifier.classify_image = lambda rgb, *a, **k: (time.sleep(0.05), original(rgb))[1]  # ~20 fps model
    red = onnx_factory.mostly((230, 0, 0))
    fake = FakeCapture(cv2.cvtColor(red, cv2.COLOR_RGB2BGR), frames=150, delay=0.002)
    session, events = run_session(0, lambda s: fake, classifier)
    assert events["states"][-1][0] == FAILED  # a live source that stops giving frames is "lost"
    assert "Lost camera 0" in events["states"][-1][1]
    assert len(events["frames"]) == 150
    assert 2 <= len(events["predictions"]) < 60
    assert session.dropped_frames >= 150 - len(events["predictions"]) - 2
    assert {p.top_label for _, p in events["predictions"]} == {"red"}
    assert fake.released


def test_open_failure_and_missing_file(tmp_path: Path) -> None:
    _, events = run_session(3, lambda s: FakeCapture(np.zeros((4, 4, 3), np.uint8), opened=False))
    assert events["states"][-1][0] == FAILED and "Could not open camera 3" in events["states"][-1][1]
    _, events = run_session(str(tmp_path / "nope.avi"), lambda s: pytest.fail("must not open a missing file"))
    assert events["states"][-1] == (FAILED, f"File not found: {tmp_path / 'nope.avi'}")


def test_exception_in_capture_is_reported_not_raised() -> None:
    def explode(source):
        raise RuntimeError("driver crashed")

    _, events = run_session(0, explode)
    assert events["states"][-1][0] == FAILED and "driver crashed" in events["states"][-1][1]


def test_file_source_ends(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (32, 32))
    for _ in range(5):
        writer.write(np.full((32, 32, 3), 200, np.uint8))
    writer.release()
    _, events = run_session(str(path), lambda s: cv2.VideoCapture(s), pace_files=False)
    assert events["states"][-1] == (ENDED, "End of video (5 frames).")
    assert len(events["frames"]) == 5


def test_stop_while_running_is_prompt() -> None:
    fake = FakeCapture(np.zeros((8, 8, 3), np.uint8), delay=0.01)
    before = set(threading.enumerate())
    session, events = run_session(0, lambda s: fake, until=lambda e: len(e["frames"]) >= 3)
    assert events["states"][-1][0] == STOPPED
    assert fake.released
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("camera-")]


def test_probe_devices_lists_only_openable_indices() -> None:
    assert probe_devices([0, 1, 2], lambda i: FakeCapture(np.zeros((2, 2, 3), np.uint8), opened=i == 1)) == [1]
    assert probe_devices([0], lambda i: 1 / 0) == []


def test_save_snapshot_writes_png_and_json(tmp_path: Path, colour_model: Path) -> None:
    classifier = Classifier(load_model(colour_model, provider="cpu"))
    green = onnx_factory.mostly((0, 220, 0))
    png, sidecar = save_snapshot(tmp_path / "shots", green, classifier.classify_image(green), 0, frame_index=7)
    assert png.suffix == ".png" and sidecar == png.with_suffix(".json")
    assert np.array_equal(cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB), green)
    record = json.loads(sidecar.read_text())
    assert record["top_label"] == "green" and record["image"] == png.name and record["frame_index"] == 7
    assert [entry["label"] for entry in record["top_k"]][0] == "green"
    assert not [p for p in (tmp_path / "shots").iterdir() if p.name.startswith(".")]  # no temp files left
