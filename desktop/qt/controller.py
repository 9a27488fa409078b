"""Owns the current model and the background work; the window only reacts to its signals.

Results are tagged with a generation number that changes with the model, so a
prediction computed by the previous model can never be shown next to the new one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.core.classifier import Classifier, Prediction
from desktop.core.model import LoadedModel
from desktop.core.providers import PROVIDER_CHOICES
from desktop.qt.workers import BackgroundTask, ClassifyArrayTask, ClassifyTask, ModelLoadTask, TaskRunner

FULL_RESULT_CACHE = 12  # predictions kept with their image and maps (memory bound)


class InferenceController(QObject):
    """Loads models and classifies images on a private thread pool."""

    model_loading = Signal(str)  # path
    model_changed = Signal(object)  # LoadedModel
    model_failed = Signal(str, str)  # path, message
    prediction_ready = Signal(object)  # Prediction
    unknown_threshold_changed = Signal(object)  # float: the loaded model's threshold, moved by the user
    busy_changed = Signal(bool)

    def __init__(self, provider: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.provider = provider
        self.runner = TaskRunner(2, self)
        self.runner.busy_changed.connect(self.busy_changed)
        self.model: LoadedModel | None = None
        self.classifier: Classifier | None = None
        self.generation = 0
        self._load_request = 0
        self._classify_tasks: set[BackgroundTask] = set()
        self._cache: OrderedDict[Path, Prediction] = OrderedDict()
        # The user's unknown threshold for a model file, by its SHA-256 (the window's settings).
        self.threshold_for: Callable[[str], float | None] | None = None

    # model -------------------------------------------------------------------------
    def load_model(self, path: str | Path) -> None:
        """Start loading `path`; the current model stays in use until it succeeds."""
        self._load_request += 1
        task = ModelLoadTask(Path(path), self.provider, self._load_request)
        task.signals.model_loaded.connect(self._on_model_loaded)
        task.signals.model_failed.connect(self._on_model_failed)
        self.model_loading.emit(str(path))
        self._start(task)

    def set_provider(self, provider: str) -> bool:
        """Switch execution provider and reload the current model with it; True if a reload started."""
        if provider not in PROVIDER_CHOICES:
            raise ValueError(f"unknown provider {provider!r}")
        self.provider = provider
        if self.model is None:
            return False
        self.load_model(self.model.info.path)
        return True

    def _on_model_loaded(self, model: LoadedModel, request_id: int) -> None:
        if request_id != self._load_request:
            return  # a newer load was requested meanwhile
        self.cancel_classification()
        self.generation += 1
        self._cache.clear()
        self.model = model
        self.classifier = Classifier(model)
        if model.has_unknown_score and self.threshold_for is not None:  # before anything is classified
            model.set_threshold_override(self.threshold_for(model.info.sha256))
        self.model_changed.emit(model)

    def set_unknown_threshold(self, value: float | None) -> None:
        """Judge from now on against `value` (None: the model file's own threshold).

        Views re-judge what they show from the scores they hold; nothing is classified again.
        """
        if self.model is None or not self.model.has_unknown_score:
            return
        self.model.set_threshold_override(value)
        self.unknown_threshold_changed.emit(self.model.unknown_threshold)

    def _on_model_failed(self, path: str, message: str, request_id: int) -> None:
        if request_id == self._load_request:
            self.model_failed.emit(path, message)

    # classification ------------------------------------------------------------------
    def cached(self, path: Path) -> Prediction | None:
        prediction = self._cache.get(path)
        if prediction is not None:
            self._cache.move_to_end(path)
        return prediction

    def classify(self, paths: Iterable[Path]) -> bool:
        """Queue files for classification; False when no model is loaded yet."""
        paths = list(paths)
        if self.classifier is None or not paths:
            return False
        task = ClassifyTask(self.classifier, paths, self.generation)
        task.signals.prediction.connect(self._on_prediction)
        self._classify_tasks.add(task)
        self._start(task)
        return True

    def classify_image(self, image: np.ndarray, path: Path | None = None) -> bool:
        """Queue an in-memory RGB image (e.g. pasted); its prediction has `path` (None for a paste)."""
        if self.classifier is None:
            return False
        task = ClassifyArrayTask(self.classifier, image, self.generation, path)
        task.signals.prediction.connect(self._on_prediction)
        self._classify_tasks.add(task)
        self._start(task)
        return True

    def _on_prediction(self, prediction: Prediction, generation: int) -> None:
        if generation != self.generation:
            return
        if prediction.path is not None:
            self._cache[prediction.path] = prediction
            self._cache.move_to_end(prediction.path)
            while len(self._cache) > FULL_RESULT_CACHE:
                self._cache.popitem(last=False)
        self.prediction_ready.emit(prediction)

    def cancel_classification(self) -> None:
        for task in list(self._classify_tasks):
            task.cancel()

    # housekeeping ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.runner.busy

    def _start(self, task: BackgroundTask) -> None:
        if isinstance(task, (ClassifyTask, ClassifyArrayTask)):
            task.signals.finished.connect(self._classify_tasks.discard)
        self.runner.start(task)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Cancel everything and wait for the workers, so none outlives the window."""
        self.runner.shutdown(timeout_ms)
