"""The Adopt dialog's background work: finding convnet-train, inspecting, previewing, saving.

None of it may block the GUI thread: inspecting and saving run `convnet-train adopt` as a
child (seconds for ONNX, longer for Keras sources that TensorFlow converts), and the
preview runs the source's graph. Each job is a task on a private pool (desktop/qt/workers.py)
that reports by signal; the save and the inspect can be cancelled (the child's whole
process group is killed, desktop/core/adoption.run_child). Previews are "newest wins":
while one runs, only the latest request waits, so typing in a field never queues a backlog.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.core.adopt_preview import AdoptPreview, PreviewError
from desktop.core.adoption import AdoptChoices, AdoptionError, inspect_source, save_adopted
from desktop.core.trainer_launcher import Launcher, TrainerMissing, find_launcher
from desktop.qt.workers import BackgroundTask, TaskRunner


class JobSignals(QObject):
    succeeded = Signal(object)
    failed = Signal(str)


class Job(BackgroundTask):
    """`function(cancel_event)` in the pool; its value or its error's one line comes back by signal.

    A cancelled job stays silent, except that `None` (the function's own "cancelled")
    still arrives as success so the owner can reset its buttons.
    """

    def __init__(self, function: Callable[[threading.Event], object]) -> None:
        super().__init__()
        self.function = function
        self.job_signals = JobSignals()  # created here, on the GUI thread

    def work(self) -> None:
        try:
            value = self.function(self.cancel_event)
        except (AdoptionError, PreviewError) as error:
            self.job_signals.failed.emit(str(error))
            return
        except Exception as error:  # noqa: BLE001 - shown in the dialog, never a crash
            self.job_signals.failed.emit(f"unexpected error: {' '.join(str(error).split())[:300]}")
            return
        self.job_signals.succeeded.emit(value)


class AdoptWorker(QObject):
    """Owns the pool, the preview session and the inspect step's scratch folder."""

    launcher_found = Signal(object)  # Launcher
    trainer_missing = Signal(object)  # TrainerMissing
    inspected = Signal(object)  # Inspection
    inspect_failed = Signal(str)
    preview_ready = Signal(object)  # PreviewResult
    preview_failed = Signal(str)
    saved = Signal(object)  # Path
    save_failed = Signal(str)
    save_cancelled = Signal()

    def __init__(self, parent: QObject | None = None, find: Callable[[], Launcher | TrainerMissing] | None = None):
        super().__init__(parent)
        self.runner = TaskRunner(3, self)
        self.preview = AdoptPreview()
        self.find = find or find_launcher
        self.launcher: Launcher | None = None
        self.scratch = Path(tempfile.mkdtemp(prefix="convnet-adopt-"))
        self._save_job: Job | None = None
        self._inspect_job: Job | None = None
        self._preview_running = False
        self._preview_waiting: tuple | None = None

    def _start(self, function, on_success, on_failure) -> Job:
        job = Job(function)
        job.job_signals.succeeded.connect(on_success)
        job.job_signals.failed.connect(on_failure)
        self.runner.start(job)
        return job

    # inspect ---------------------------------------------------------------------------
    def inspect(self, source: Path) -> None:
        """Find convnet-train, then run `adopt --inspect`; one of launcher_found+inspected,
        inspect_failed or trainer_missing follows."""

        def work(cancel: threading.Event):
            found = self.launcher or self.find()
            if isinstance(found, TrainerMissing):
                return found
            self.launcher = found
            return found, inspect_source(found.argv, source, self.scratch, cancel)

        self._inspect_job = self._start(work, self._on_inspected, self.inspect_failed.emit)

    def _on_inspected(self, value) -> None:
        if isinstance(value, TrainerMissing):
            self.trainer_missing.emit(value)
        elif value is not None and value[1] is not None:
            self.launcher_found.emit(value[0])
            self.inspected.emit(value[1])

    # preview ---------------------------------------------------------------------------
    def request_preview(self, preview_onnx: Path, image: np.ndarray, choices: AdoptChoices, labels: list[str]) -> None:
        """Run the preview now, or after the one running (only the newest request waits)."""
        request = (preview_onnx, image, choices, labels)
        if self._preview_running:
            self._preview_waiting = request
            return
        self._preview_running = True
        self._start(lambda _cancel: self.preview.predict(*request), self._preview_done, self._preview_error)

    def _preview_done(self, result) -> None:
        self._preview_finished()
        if self._preview_waiting is None:
            self.preview_ready.emit(result)

    def _preview_error(self, message: str) -> None:
        self._preview_finished()
        if self._preview_waiting is None:
            self.preview_failed.emit(message)

    def _preview_finished(self) -> None:
        self._preview_running = False
        if self._preview_waiting is not None:
            waiting, self._preview_waiting = self._preview_waiting, None
            self.request_preview(*waiting)

    @property
    def preview_busy(self) -> bool:
        return self._preview_running

    # save ------------------------------------------------------------------------------
    def save(self, source: Path, destination: Path, choices: AdoptChoices) -> None:
        """Run the real adopt; saved, save_failed or save_cancelled follows."""
        if self.launcher is None:
            self.save_failed.emit("no convnet-train to run")
            return
        argv = self.launcher.argv
        self._save_job = self._start(
            lambda cancel: save_adopted(argv, source, destination, choices, cancel),
            self._on_saved,
            self._on_save_failed,
        )

    def _on_saved(self, path) -> None:
        self._save_job = None
        if path is None:
            self.save_cancelled.emit()
        else:
            self.saved.emit(path)

    def _on_save_failed(self, message: str) -> None:
        self._save_job = None
        self.save_failed.emit(message)

    @property
    def saving(self) -> bool:
        return self._save_job is not None

    def cancel_save(self) -> None:
        if self._save_job is not None:
            self._save_job.cancel_event.set()

    def shutdown(self) -> None:
        """Kill any child, wait for the pool, remove the scratch folder (the preview ONNX)."""
        for job in (self._save_job, self._inspect_job):
            if job is not None:
                job.cancel_event.set()
        self.runner.shutdown(30_000)
        shutil.rmtree(self.scratch, ignore_errors=True)
