"""Record camera frames into a class folder while a button is held, as Teachable Machine does.

The camera itself is the Camera tab's code (desktop.core.camera.CameraSession through
desktop.qt.camera_worker.CameraWorker): this module only decides which frames to keep and
writes them. `FrameRecorder.offer(rgb)` is called for every frame shown; it keeps at most
`fps` frames a second (the camera's own rate is usually 30) and hands them to a writer
thread through a newest-only mailbox, so encoding and fsync never hold up the preview,
and a slow disk drops frames instead of piling them up in memory.

Files: `DATASET/<class>/capture-<time>-<token>-<n>.png` (or .jpg). Each is written with
convnet_common.atomic (a temporary file, fsync, rename), so a crash or a full disk never
leaves a half image for training to trip over. The name carries the recording's start
time, this process's id and a random token, and is checked free before writing, so no
existing file (another recording's, the user's own) is overwritten. Captures are new
files, not copies of the user's: they are not in the dataset's edit journal.

When a write fails (read-only folder, full disk), recording stops at once with a reason
(`on_failed`), and every frame written before stays.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from convnet_common.atomic import remove_stale_temp_files, write_bytes_atomic
from desktop.core.camera import JOIN_TIMEOUT_S, LatestFrameMailbox
from desktop.core.dataset_edits import why
from desktop.core.labelling import class_name_problem, dataset_classes
from desktop.core.sorting import free_name

__all__ = ["FORMATS", "FRAME_RATES", "FrameRecorder", "choose_class_folder", "encode_frame"]

FRAME_RATES = (2, 5, 10)
FORMATS = ("png", "jpg")
JPEG_QUALITY = 95


def choose_class_folder(dataset: str | os.PathLike[str], name: str) -> Path:
    """DATASET/<name> for an existing class or a valid new name; ValueError saying why not."""
    problem = class_name_problem(name, dataset_classes(dataset))
    if problem is not None:
        raise ValueError(problem)
    return Path(dataset) / name


def encode_frame(rgb: np.ndarray, fmt: str = "png") -> bytes:
    """The frame as PNG or JPEG bytes (OpenCV wants BGR)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if fmt == "jpg" else []
    ok, data = cv2.imencode(f".{fmt}", bgr, params)
    if not ok:
        raise OSError(f"could not encode the frame as {fmt.upper()}")
    return data.tobytes()


class FrameRecorder:
    """Writes offered frames into `folder`, at most `fps` a second, on its own thread.

    `on_written(count, path)` and `on_failed(message)` are called on the writer thread.
    Use: start(), offer() per frame, stop() (waits for the frame being written).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        fps: float,
        *,
        fmt: str = "png",
        on_written: Callable[[int, Path], None] = lambda count, path: None,
        on_failed: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown image format {fmt!r}")
        if fps <= 0:
            raise ValueError("the frame rate must be positive")
        self.folder = Path(folder)
        self.interval = 1.0 / fps
        self.fmt = fmt
        self.on_written = on_written
        self.on_failed = on_failed
        self.clock = clock
        self.written: list[Path] = []
        self.error: str | None = None
        self._mailbox = LatestFrameMailbox()
        self._due = 0.0
        self._stem = f"capture-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{secrets.token_hex(2)}"
        self._thread: threading.Thread | None = None

    @property
    def count(self) -> int:
        return len(self.written)

    @property
    def recording(self) -> bool:
        return self._thread is not None and not self._mailbox.closed and self.error is None

    def start(self) -> None:
        self._due = self.clock()
        self._thread = threading.Thread(target=self._main, name="camera-recorder", daemon=True)
        self._thread.start()

    def offer(self, rgb: np.ndarray) -> bool:
        """Keep this frame if one is due (True); the schedule does not drift with the camera's rate."""
        if not self.recording:
            return False
        now = self.clock()
        if now < self._due:
            return False
        # The next one is due one interval after this one was; after a gap, from now.
        self._due = self._due + self.interval if now - self._due < self.interval else now + self.interval
        self._mailbox.put(rgb)
        return True

    def stop(self, timeout_s: float = JOIN_TIMEOUT_S) -> bool:
        """Stop taking frames; the one being written is finished. False if the thread is stuck."""
        self._mailbox.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    # the writer thread -----------------------------------------------------------------
    def _main(self) -> None:
        while True:
            rgb = self._mailbox.take(timeout=0.2)
            if rgb is None:
                if self._mailbox.closed:
                    return
                continue
            try:
                path = self._write(rgb)
            except OSError as error:
                self.error = f"Recording stopped: could not write to {self.folder}: {why(error)}."
                self._mailbox.close()
                self._call(self.on_failed, self.error)
                return
            self.written.append(path)
            self._call(self.on_written, len(self.written), path)

    def _write(self, rgb: np.ndarray) -> Path:
        data = encode_frame(rgb, self.fmt)
        if not self.written:
            self.folder.mkdir(exist_ok=True)  # not parents: a dataset gone since is an error
            remove_stale_temp_files(self.folder)  # a killed recording's half-written temporaries
        target = free_name(self.folder, f"{self._stem}-{len(self.written) + 1:05d}.{self.fmt}")
        write_bytes_atomic(target, data)
        return target

    @staticmethod
    def _call(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - a receiver gone mid-shutdown must not kill the writer
            pass
