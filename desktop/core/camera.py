"""Live capture without Qt: a capture thread, an inference thread and a newest-frame mailbox.

Capture reads at the source's own rate; inference always takes the newest frame and drops
the rest, so a slow model lowers the inference rate but never the preview rate. Every
blocking OpenCV call (opening a device can take seconds) happens on the capture thread,
and every failure is reported through a callback: no exception leaves a thread.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from convnet_common.atomic import write_bytes_atomic, write_text_atomic
from desktop.core.classifier import Classifier, Prediction

Source = int | str
UNPLUG_TIMEOUT_S = 1.0  # a live source that gives no frame for this long is reported lost
JOIN_TIMEOUT_S = 2.0
DEFAULT_FILE_FPS = 30.0
MAX_PROBE_INDEX = 4

# states reported through `on_state`; IDLE is the view's before any capture was started
OPENING, RUNNING, ENDED, FAILED, STOPPED = "opening", "running", "ended", "failed", "stopped"
IDLE = "idle"


class Capture(Protocol):
    """The part of cv2.VideoCapture the session uses (tests inject fakes)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[Source], Capture]


def open_capture(source: Source) -> Capture:
    """cv2.VideoCapture for a device index, file or URL (blocking: call off the GUI thread)."""
    return cv2.VideoCapture(source) if isinstance(source, int) else cv2.VideoCapture(str(source))


def parse_source(text: str) -> Source:
    """What a user typed: a bare number is a device index, anything else a path or URL."""
    text = text.strip().strip('"').strip("'")
    if re.fullmatch(r"\d{1,3}", text):
        return int(text)
    return os.path.expanduser(text) if "://" not in text else text


def describe_source(source: Source) -> str:
    return f"camera {source}" if isinstance(source, int) else Path(source).name if "://" not in source else source


def is_file_source(source: Source) -> bool:
    return isinstance(source, str) and "://" not in source


@dataclass
class Frame:
    """One captured frame (RGB) with its sequence number and capture time."""

    rgb: np.ndarray
    index: int
    timestamp: float


class LatestFrameMailbox:
    """A single slot: `put` replaces an untaken frame (counted as dropped), `take` waits for one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._closed = False
        self.dropped = 0
        self.delivered = 0

    def put(self, item: Any) -> bool:
        """Store `item`; True when the slot was empty (the consumer may need a nudge)."""
        with self._cond:
            was_empty = self._item is None
            if not was_empty:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()
            return was_empty

    def take(self, timeout: float | None = None) -> Any:
        """The newest item, or None after `timeout` or once closed and empty."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            if item is not None:
                self.delivered += 1
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class RateMeter:
    """Events per second over the last `window_s` seconds."""

    def __init__(self, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()  # ticked on a worker thread, read on the GUI thread

    def tick(self) -> None:
        with self._lock:
            self._times.append(self.clock())
            self._trim()

    def rate(self) -> float:
        with self._lock:
            self._trim()
            if len(self._times) < 2:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self) -> None:
        cutoff = self.clock() - self.window_s
        while self._times and self._times[0] < cutoff:
            self._times.popleft()


def open_failure_message(source: Source) -> str:
    if isinstance(source, int):
        return f"Could not open camera {source}: it is not connected, or another app is using it."
    if "://" in source:
        return f"Could not open the stream {source}: check the URL and the network."
    return f"Could not open {source} as a video (unsupported or damaged file)."


class CameraSession:
    """One run of one source: starts a capture thread and an inference thread.

    Callbacks run on those threads and must not block for long: `on_frame(Frame)` per
    captured frame, `on_prediction(Frame, Prediction)`, `on_state(state, message)`.
    """

    def __init__(
        self,
        source: Source,
        *,
        on_frame: Callable[[Frame], None],
        on_prediction: Callable[[Frame, Prediction], None],
        on_state: Callable[[str, str], None],
        classifier: Classifier | None = None,
        factory: CaptureFactory = open_capture,
        unplug_timeout_s: float = UNPLUG_TIMEOUT_S,
        pace_files: bool = True,
    ) -> None:
        self.source = source
        self._on_frame = on_frame
        self._on_prediction = on_prediction
        self._on_state = on_state
        self._factory = factory
        self.unplug_timeout_s = unplug_timeout_s
        self.pace_files = pace_files
        self._classifier = classifier
        self._lock = threading.Lock()
        self.mailbox = LatestFrameMailbox()
        self.stop_event = threading.Event()
        self.capture_rate = RateMeter()
        self.inference_rate = RateMeter()
        self.frames_read = 0
        self.source_fps = 0.0
        self._threads: list[threading.Thread] = []

    # control ---------------------------------------------------------------------------
    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._capture_main, name="camera-capture", daemon=True),
            threading.Thread(target=self._inference_main, name="camera-inference", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = JOIN_TIMEOUT_S) -> bool:
        """Ask both threads to finish and wait; False if one is still stuck (e.g. in open)."""
        self.stop_event.set()
        self.mailbox.close()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not self.alive

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def set_classifier(self, classifier: Classifier | None) -> None:
        """Swap the model; the next frame taken uses it."""
        with self._lock:
            self._classifier = classifier

    @property
    def dropped_frames(self) -> int:
        return self.mailbox.dropped

    # threads ---------------------------------------------------------------------------
    def _emit(self, callback: Callable[..., None], *args: Any) -> None:
        if self.stop_event.is_set() and callback is not self._on_state:
            return
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - a receiver gone mid-shutdown must not kill the thread
            pass

    def _capture_main(self) -> None:
        capture: Capture | None = None
        state, message = STOPPED, ""
        try:
            self._emit(self._on_state, OPENING, f"Opening {describe_source(self.source)}…")
            if is_file_source(self.source) and not Path(self.source).exists():
                state, message = FAILED, f"File not found: {self.source}"
                return
            capture = self._factory(self.source)
            if self.stop_event.is_set():
                return
            if capture is None or not capture.isOpened():
                state, message = FAILED, open_failure_message(self.source)
                return
            state, message = self._read_loop(capture)
        except Exception as error:  # noqa: BLE001 - reported, never raised on a worker thread
            state, message = FAILED, f"Capture failed: {type(error).__name__}: {error}"
        finally:
            release_quietly(capture)
            self.mailbox.close()
            if self.stop_event.is_set():
                state, message = STOPPED, "Stopped."
            self._emit(self._on_state, state, message)

    def _read_loop(self, capture: Capture) -> tuple[str, str]:
        is_file = is_file_source(self.source)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.source_fps = fps if 1.0 <= fps <= 240.0 else (DEFAULT_FILE_FPS if is_file else 0.0)
        interval = 1.0 / self.source_fps if (is_file and self.pace_files and self.source_fps) else 0.0
        self._emit(self._on_state, RUNNING, f"Playing {describe_source(self.source)}")
        last_ok = next_due = time.monotonic()
        while not self.stop_event.is_set():
            ok, bgr = capture.read()
            now = time.monotonic()
            if ok and bgr is not None and getattr(bgr, "size", 0):
                last_ok = now
                frame = Frame(_to_rgb(bgr), self.frames_read, now)
                self.frames_read += 1
                self.capture_rate.tick()
                self._emit(self._on_frame, frame)  # preview first: a result never precedes its frame
                self.mailbox.put(frame)
                if interval:
                    next_due = max(next_due + interval, now - interval)
                    self.stop_event.wait(max(0.0, next_due - time.monotonic()))
                continue
            if is_file:
                if self.frames_read == 0:
                    return FAILED, f"{describe_source(self.source)} has no readable frames."
                return ENDED, f"End of video ({self.frames_read} frames)."
            if now - last_ok > self.unplug_timeout_s:
                return FAILED, (
                    f"Lost {describe_source(self.source)}: no frames for {self.unplug_timeout_s:.0f} s "
                    "(unplugged, or taken by another app)."
                )
            self.stop_event.wait(0.02)
        return STOPPED, "Stopped."

    def _inference_main(self) -> None:
        while not self.stop_event.is_set():
            frame = self.mailbox.take(timeout=0.2)
            if frame is None:
                if self.mailbox.closed:
                    return
                continue
            with self._lock:
                classifier = self._classifier
            if classifier is None:
                continue
            try:
                prediction = classifier.classify_image(frame.rgb)
            except Exception as error:  # noqa: BLE001 - one bad frame must not end the session
                prediction = Prediction.failed(None, f"inference failed: {error}")
                prediction.image = frame.rgb
            self.inference_rate.tick()
            self._emit(self._on_prediction, frame, prediction)


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def candidate_indices(max_index: int = MAX_PROBE_INDEX) -> list[int]:
    """Device indices worth probing: the /dev/videoN nodes on Linux, else 0..max_index."""
    if sys.platform.startswith("linux"):
        found = sorted(int(m.group(1)) for p in glob.glob("/dev/video*") if (m := re.search(r"video(\d+)$", p)))
        return [i for i in found if i <= 63]
    return list(range(max_index + 1))


def release_quietly(capture) -> None:
    """Release a capture that may be None or already broken (an unplugged camera)."""
    if capture is None:
        return
    try:
        capture.release()
    except Exception:  # noqa: BLE001 - a failing release must not hide the real outcome
        pass


def probe_devices(
    indices: list[int] | None = None,
    factory: CaptureFactory = open_capture,
    cancel: threading.Event | None = None,
) -> list[int]:
    """Indices that open and deliver a frame (blocking: run it on a worker thread)."""
    working = []
    for index in candidate_indices() if indices is None else indices:
        if cancel is not None and cancel.is_set():
            break
        capture = None
        try:
            capture = factory(index)
            if capture is not None and capture.isOpened():
                working.append(index)
        except Exception:  # noqa: BLE001 - an odd device is simply not listed
            pass
        finally:
            release_quietly(capture)
    return working


def save_snapshot(
    folder: str | os.PathLike[str], rgb: np.ndarray, prediction: Prediction | None, source: Source, **extra: Any
) -> tuple[Path, Path]:
    """Write the frame as PNG and its prediction as JSON beside it, both atomically."""
    folder = Path(folder)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    png, sidecar = folder / f"snapshot-{stamp}.png", folder / f"snapshot-{stamp}.json"
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("could not encode the frame as PNG")
    record: dict[str, Any] = {
        "image": png.name,
        "source": source if isinstance(source, int) else str(source),
        "captured_at": datetime.now().astimezone().isoformat(timespec="milliseconds"),
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "top_label": None,
        "top_k": [],
        **extra,
    }
    if prediction is not None and prediction.ok:
        record["top_label"] = prediction.top_label
        record["top_k"] = [{"label": label, "probability": round(p, 6)} for label, p in prediction.top_k]
        record["inference_ms"] = round(prediction.inference_ms, 3)
    elif prediction is not None:
        record["error"] = prediction.error
    write_bytes_atomic(png, encoded.tobytes())
    write_text_atomic(sidecar, json.dumps(record, indent=2) + "\n")
    return png, sidecar
