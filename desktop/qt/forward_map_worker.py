"""Forward-pass activation maps (desktop/core/forward_maps.py) off the GUI thread, one at a time.

The Classify view asks `ForwardMaps.request` for the map of one class of the image on
display when the model has no in-graph Grad-CAM. A cached map comes back at once; else a
task starts on a one-thread pool, reports passes done / total, and the map arrives by
`ready`. Only the latest request counts: a new image, class or model (every request, and
`cancel`) cancels the running task, which stops before its next batch, and a result that
arrives for anything but the latest request is dropped. `shutdown` (the view's, called as
the window closes) cancels and waits. Folder runs never come here: only a view asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.core.classifier import Classifier, Prediction
from desktop.core.forward_maps import (
    DEFAULT_MAP_BATCH,
    DEFAULT_METHOD,
    MapCancelled,
    MapMethod,
    caption,
    checked_batch_size,
    compute_map,
)
from desktop.core.map_cache import MapCache, MapKey, image_identity, model_identity
from desktop.core.messages import first_line
from desktop.core.model import LoadedModel
from desktop.qt.workers import BackgroundTask, TaskRunner, TaskSignals


@dataclass(frozen=True)
class ComputedMap:
    """A finished map: [H, W] float32 values at the model's input size, and what to call it."""

    key: MapKey
    values: np.ndarray
    caption: str


class MapSignals(TaskSignals):
    progress = Signal(object, int, int)  # key, passes done, passes in all
    computed = Signal(object)  # ComputedMap
    map_failed = Signal(object, str)  # key, one-line reason


class ForwardMapTask(BackgroundTask):
    """Compute one map with the model's own session, at a batch size the guarded first run checked."""

    def __init__(
        self,
        model: LoadedModel,
        model_input: np.ndarray,
        key: MapKey,
        method: MapMethod,
        cache: MapCache,
        batch_sizes: dict[str, int],
    ) -> None:
        super().__init__()
        self.signals = MapSignals()
        self.model = model
        self.model_input = model_input
        self.key = key
        self.method = method
        self.cache = cache
        self.batch_sizes = batch_sizes  # by model identity: the look-up hashes the file, once per model

    def work(self) -> None:
        batch_size = self.batch_sizes.get(self.key.model)
        if batch_size is None:
            batch_size = checked_batch_size(self.model.info.path, self.model.fixed_batch, DEFAULT_MAP_BATCH)
            self.batch_sizes[self.key.model] = batch_size
        try:
            values = compute_map(
                lambda batch: self.model.predict(batch)[0],
                self.model_input,
                self.key.class_index,
                self.method,
                batch_size,
                cancel=self.cancel_event,
                progress=lambda done, total: self.signals.progress.emit(self.key, done, total),
            )
        except MapCancelled:
            return
        except Exception as error:  # noqa: BLE001 - a stranger's model may fail any way: a message, no crash
            if not self.cancelled:
                self.signals.map_failed.emit(self.key, f"the model failed on a masked image: {first_line(error)}")
            return
        self.cache.put(self.key, values)
        if not self.cancelled:
            text = caption(self.method, self.model.input_size)
            stored = self.cache.get(self.key)  # the cache's read-only copy, if it was not evicted already
            self.signals.computed.emit(ComputedMap(self.key, values if stored is None else stored, text))


class ForwardMaps(QObject):
    """The maps a view asks for: cached, or computed in the background with progress and cancel."""

    progress = Signal(int, int)  # passes done, passes in all (latest request only)
    ready = Signal(object)  # ComputedMap for the latest request
    failed = Signal(str)  # why the latest request has no map

    def __init__(
        self,
        model_source: Callable[[], LoadedModel | None],
        method: MapMethod = DEFAULT_METHOD,
        cache: MapCache | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model_source = model_source
        self.method = method
        self.cache = cache if cache is not None else MapCache()
        self.runner = TaskRunner(1, self)
        self._latest: MapKey | None = None
        self._task: ForwardMapTask | None = None
        self._batch_sizes: dict[str, int] = {}

    @property
    def computing(self) -> bool:
        return self._task is not None

    def request(self, prediction: Prediction, class_index: int) -> ComputedMap | None:
        """The map of `class_index` for the prediction's image: returned if cached, else started
        (None now; `ready` later). Anything still running for another request is cancelled."""
        model = self.model_source()
        if model is None or prediction.image is None or prediction.error is not None:
            self.cancel()
            return None
        model_input = Classifier(model).preprocess([prediction.image])[0]  # the pixels classification used
        key = MapKey(
            model_identity(model.info.path, model.info.sha256),
            image_identity(model_input),
            int(class_index),
            self.method.key(),
        )
        if self._task is not None and key == self._latest:
            return None  # already on its way
        self.cancel()
        self._latest = key
        cached = self.cache.get(key)
        if cached is not None:
            return ComputedMap(key, cached, caption(self.method, model.input_size))
        task = ForwardMapTask(model, model_input, key, self.method, self.cache, self._batch_sizes)
        task.signals.progress.connect(self._on_progress)
        task.signals.computed.connect(self._on_computed)
        task.signals.map_failed.connect(self._on_failed)
        task.signals.finished.connect(self._on_finished)
        self._task = task
        self.runner.start(task)
        return None

    def cancel(self) -> None:
        """Stop the running map (it ends before its next batch) and forget the latest request."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._latest = None

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self.cancel()
        self.runner.shutdown(timeout_ms)

    def _on_progress(self, key: MapKey, done: int, total: int) -> None:
        if key == self._latest:
            self.progress.emit(done, total)

    def _on_computed(self, computed: ComputedMap) -> None:
        if computed.key == self._latest:
            self.ready.emit(computed)

    def _on_failed(self, key: MapKey, message: str) -> None:
        if key == self._latest:
            self.failed.emit(message)

    def _on_finished(self, task: BackgroundTask) -> None:
        if task is self._task:
            self._task = None
