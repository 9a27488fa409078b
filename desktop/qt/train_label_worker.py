"""The labelling dialog's background work, and its grid of thumbnails.

`LabelTask` loads the model when a file was chosen (the app's current model otherwise),
classifies the folder with desktop.core.labelling.classify_folder (the Batch engine) and
decodes a thumbnail per image, all off the GUI thread; Cancel keeps what was classified.
Thumbnails travel as numpy arrays and become pixmaps on the GUI thread (QPixmap is not
thread-safe); past MAX_THUMBNAILS images the rest are shown without one, so a folder of
50,000 does not hold gigabytes of icons.

`LabelGrid` is a QListView in icon mode whose keys decide: 1-9 a class, Enter or Space
the suggestion, Backspace or 0 skip. It takes those keys itself, so Enter never reaches
the dialog's buttons.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from desktop.core.batch import BatchProgress
from desktop.core.classifier import Classifier
from desktop.core.labelling import classify_folder
from desktop.core.messages import first_line
from desktop.core.model import LoadedModel, ModelLoadError, load_model
from desktop.qt.train_dataset_worker import thumbnail
from desktop.qt.workers import BackgroundTask, TaskSignals

THUMB_PX = 72
MAX_THUMBNAILS = 3000
ACCEPT, CLASS, SKIP = "accept", "class", "skip"


class LabelSignals(TaskSignals):
    progress = Signal(int, int)  # done, total
    classified = Signal(object)  # LabelResult
    failed = Signal(str)


class LabelResult:
    """What the task found: suggestions (least certain first), unreadable files, thumbnails, the model."""

    def __init__(self, items, unreadable, thumbs, model: LoadedModel, cancelled: bool) -> None:
        self.items = items
        self.unreadable = unreadable
        self.thumbs: dict[Path, np.ndarray] = thumbs
        self.model = model
        self.cancelled = cancelled


class LabelTask(BackgroundTask):
    def __init__(self, folder: Path, model: LoadedModel | None, model_path: Path | None, provider: str) -> None:
        super().__init__()
        self.signals = LabelSignals()
        self.folder = folder
        self.model = model
        self.model_path = model_path
        self.provider = provider

    def work(self) -> None:
        try:
            model = self.model if self.model_path is None else load_model(self.model_path, provider=self.provider)
            if model is None:
                raise ModelLoadError("no model: open one (Model menu) or choose a model file")
            items, unreadable = classify_folder(
                Classifier(model), self.folder, cancel=self.cancel_event, progress=self._progress
            )
            thumbs = {}
            for item in items[:MAX_THUMBNAILS]:
                if self.cancelled:
                    break
                picture = thumbnail(item.path, THUMB_PX)
                if picture is not None:
                    thumbs[item.path] = picture
        except Exception as error:  # noqa: BLE001 - shown in the dialog, never a crash
            self.signals.failed.emit(first_line(error))
            return
        self.signals.classified.emit(LabelResult(items, unreadable, thumbs, model, self.cancelled))

    def _progress(self, progress: BatchProgress) -> None:
        self.signals.progress.emit(progress.done, progress.total)


class LabelGrid(QListView):
    """Thumbnails in icon mode; `decided(kind, n)` for the decision keys (see the module docstring)."""

    decided = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.setGridSize(QSize(THUMB_PX + 64, THUMB_PX + 52))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.model_ = QStandardItemModel(self)
        self.setModel(self.model_)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.decided.emit(CLASS, key - Qt.Key.Key_0)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.decided.emit(ACCEPT, 0)
        elif key in (Qt.Key.Key_Backspace, Qt.Key.Key_0, Qt.Key.Key_Delete):
            self.decided.emit(SKIP, 0)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def current_row(self) -> int | None:
        index = self.currentIndex()
        return index.row() if index.isValid() else None

    def set_current_row(self, row: int) -> None:
        index = self.model_.index(row, 0)
        self.setCurrentIndex(index)
        self.scrollTo(index)

    def item(self, row: int) -> QStandardItem:
        return self.model_.item(row)
