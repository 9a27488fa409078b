"""Background tasks for the thread pool: model loading and classification (files or arrays).

A task never touches a widget. It reports through a `TaskSignals` object created on
the GUI thread, so Qt queues each emission back to that thread. Every task carries a
`threading.Event`; setting it makes the task stop early and stay silent.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from desktop.core.batch import classify_paths
from desktop.core.classifier import DEFAULT_TOP_K, Classifier, Prediction
from desktop.core.model import ModelLoadError, load_model


class TaskSignals(QObject):
    """Signals a task emits; `finished` always comes last, even after cancellation."""

    model_loaded = Signal(object, int)  # LoadedModel, request id
    model_failed = Signal(str, str, int)  # path, message, request id
    prediction = Signal(object, int)  # Prediction, generation
    finished = Signal(object)  # the task itself


class BackgroundTask(QRunnable):
    def __init__(self) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the controller holds the reference until `finished`
        self.signals = TaskSignals()
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self) -> None:
        try:
            self.work()
        finally:
            self.signals.finished.emit(self)

    def work(self) -> None:
        raise NotImplementedError


class TaskRunner(QObject):
    """A private thread pool that keeps each task alive until it has finished, and can cancel
    and wait for them all: what the controller and the Compare tab each need, written once,
    so neither can drop a running task's reference or forget one at shutdown."""

    busy_changed = Signal(bool)  # True when the first task starts, False when the last one ends

    def __init__(self, threads: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._tasks: set[BackgroundTask] = set()

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def start(self, task: BackgroundTask) -> None:
        was_busy = self.busy
        self._tasks.add(task)
        task.signals.finished.connect(self._on_finished)
        self.pool.start(task)
        if not was_busy:
            self.busy_changed.emit(True)

    def _on_finished(self, task: BackgroundTask) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self.busy_changed.emit(False)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Cancel every task and wait for the pool, so no worker outlives its owner."""
        for task in list(self._tasks):
            task.cancel()
        self.pool.waitForDone(timeout_ms)


class ModelLoadTask(BackgroundTask):
    """Open and validate a model file off the GUI thread (large models take seconds)."""

    def __init__(self, path: Path, provider: str, request_id: int) -> None:
        super().__init__()
        self.path = path
        self.provider = provider
        self.request_id = request_id

    def work(self) -> None:
        try:
            model = load_model(self.path, provider=self.provider)
        except ModelLoadError as error:
            if not self.cancelled:
                self.signals.model_failed.emit(str(self.path), str(error), self.request_id)
            return
        except Exception as error:  # noqa: BLE001 - anything else is still a refused model
            if not self.cancelled:
                self.signals.model_failed.emit(str(self.path), f"unexpected error: {error}", self.request_id)
            return
        if not self.cancelled:
            self.signals.model_loaded.emit(model, self.request_id)


class ClassifyTask(BackgroundTask):
    """Read and classify files in batches, emitting one prediction per file as it is ready."""

    def __init__(
        self, classifier: Classifier, paths: Sequence[Path], generation: int, batch_size: int | None = None
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.paths = list(paths)
        self.generation = generation
        self.batch_size = batch_size

    def work(self) -> None:
        for prediction in classify_paths(
            self.classifier, self.paths, top_k=DEFAULT_TOP_K, batch_size=self.batch_size, cancel=self.cancel_event
        ):
            if self.cancelled:
                return
            self.signals.prediction.emit(prediction, self.generation)


class ClassifyArrayTask(BackgroundTask):
    """Classify one in-memory RGB image (a paste, or the Compare view's second model)."""

    def __init__(self, classifier: Classifier, image: np.ndarray, generation: int, path: Path | None = None) -> None:
        super().__init__()
        self.classifier = classifier
        self.image = image
        self.generation = generation
        self.path = path

    def work(self) -> None:
        try:
            prediction = self.classifier.classify_image(self.image, self.path, top_k=DEFAULT_TOP_K)
        except Exception as error:  # noqa: BLE001 - shown in the panel, never a crash
            prediction = Prediction.failed(self.path, f"inference failed: {error}")
        if not self.cancelled:
            self.signals.prediction.emit(prediction, self.generation)
