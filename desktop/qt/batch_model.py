"""Batch plumbing for the view: table model, filter proxy, lazy thumbnails, background tasks.

Rows hold only `BatchResult`s (no pixels). Thumbnails are decoded on demand for the rows
the view actually paints, on a one-thread pool, and kept in a small LRU cache.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from convnet_common.imaging import ImageReadError, load_image_rgb
from desktop.core.batch import BatchResult, run_batch
from desktop.core.classifier import Classifier
from desktop.core.labelled import FolderLabels, detect_labelled_folder
from desktop.core.messages import first_line
from desktop.core.results_io import BatchState
from desktop.qt.imageconv import rgb_to_qimage
from desktop.qt.plain_text import tooltip
from desktop.qt.table_model import FlatTableModel

THUMB_SIZE = 40
THUMB_CACHE = 400  # pixmaps kept; a few screens' worth
COLUMNS = ("", "Path", "Class", "Confidence", "Unknown")
COL_THUMB, COL_PATH, COL_CLASS, COL_CONFIDENCE, COL_UNKNOWN = range(5)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ALL_CLASSES = "All classes"
ERRORS_ONLY = "Errors only"
MISCLASSIFIED = "Misclassified"  # offered for a labelled folder: predicted class is not the folder's
UNKNOWN_ONLY = "Unknown"  # offered for a model with an unknown score: the images it calls unknown
STATE_SAVE_INTERVAL_S = 2.0


def make_thumbnail(path: Path, size: int = THUMB_SIZE) -> QImage:
    """A small QImage of the file (safe off the GUI thread); a null image if unreadable."""
    try:
        rgb = load_image_rgb(path)
    except ImageReadError:
        return QImage()
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    return rgb_to_qimage(np.ascontiguousarray(small))


class _ThumbSignals(QObject):
    ready = Signal(str, QImage)


class _ThumbTask(QRunnable):
    def __init__(self, path: Path, signals: _ThumbSignals) -> None:
        super().__init__()
        self.path = path
        self.signals = signals

    def run(self) -> None:
        self.signals.ready.emit(str(self.path), make_thumbnail(self.path))


class BatchTableModel(FlatTableModel):
    """Results in arrival order; `root` shortens paths for display."""

    columns = COLUMNS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.results: list[BatchResult] = []
        self.root: Path | None = None
        self.truth: FolderLabels | None = None  # a labelled folder's true classes, for tooltips
        self._row_of: dict[str, int] = {}
        self._thumbs: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._thumb_signals = _ThumbSignals(self)
        self._thumb_signals.ready.connect(self._on_thumbnail)

    # content -------------------------------------------------------------------------------
    def clear(self, root: Path | None = None) -> None:
        self.beginResetModel()
        self.results.clear()
        self._row_of.clear()
        self._thumbs.clear()
        self.root = root
        self.truth = None
        self.endResetModel()

    def add_results(self, results: Sequence[BatchResult]) -> None:
        if not results:
            return
        first = len(self.results)
        self.beginInsertRows(QModelIndex(), first, first + len(results) - 1)
        for offset, result in enumerate(results):
            self._row_of[str(result.path)] = first + offset
            self.results.append(result)
        self.endInsertRows()

    def judge(self, threshold: float | None) -> None:
        """Judge every row's unknown score against a moved threshold (the scores stay)."""
        self.results[:] = [result.judged(threshold) for result in self.results]
        if self.results:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.results) - 1, len(COLUMNS) - 1))

    def labels(self) -> list[str]:
        return sorted({r.label for r in self.results if r.label is not None})

    def display_path(self, path: Path) -> str:
        if self.root is not None:
            try:
                return str(path.relative_to(self.root))
            except ValueError:
                pass
        return str(path)

    # Qt model --------------------------------------------------------------------------------
    def table_rows(self) -> list:
        return self.results

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        result = self.results[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COL_PATH:
                return self.display_path(result.path)
            if column == COL_CLASS:
                return result.label if result.ok else "error"
            if column == COL_CONFIDENCE:
                return f"{result.confidence:.1%}" if result.ok else result.error
            if column == COL_UNKNOWN:
                return "unknown" if result.unknown else ""
        elif role == SORT_ROLE:
            if column == COL_UNKNOWN:
                return result.unknown_score if result.unknown_score is not None else float("-inf")
            if column == COL_CONFIDENCE:
                return result.confidence if result.ok else -1.0
            if column == COL_CLASS:
                return result.label if result.ok else "\uffff"
            return self.display_path(result.path)
        elif role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(self._tooltip(result))  # paths, class names, errors: never markup
        elif role == Qt.ItemDataRole.ForegroundRole and not result.ok:
            return QBrush(QColor(200, 40, 40))
        elif role == Qt.ItemDataRole.DecorationRole and column == COL_THUMB:
            return self._thumbnail(result.path)
        elif role == Qt.ItemDataRole.TextAlignmentRole and column == COL_CONFIDENCE and result.ok:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _tooltip(self, result: BatchResult) -> str:
        truth = self.truth.true_label(result.path) if self.truth is not None else None
        known = [f"True class (its folder): {truth}"] if truth is not None else []
        if not result.ok:
            return "\n".join([str(result.path), *known, f"Could not classify: {result.error}"])
        lines = [str(result.path), *known] + [f"{name}: {p:.1%}" for name, p in result.top_k]
        if result.unknown_score is not None:
            verdict = "Unknown: unlike the training images" if result.unknown else "Known"
            lines.append(f"{verdict} (unknown score {result.unknown_score:.4g})")
        return "\n".join(lines)

    # thumbnails --------------------------------------------------------------------------------
    def _thumbnail(self, path: Path) -> QPixmap | None:
        key = str(path)
        pixmap = self._thumbs.get(key)
        if pixmap is not None:
            self._thumbs.move_to_end(key)
            return pixmap
        if key not in self._pending:
            self._pending.add(key)
            self._pool.start(_ThumbTask(path, self._thumb_signals))
        return None

    def _on_thumbnail(self, key: str, image: QImage) -> None:
        self._pending.discard(key)
        row = self._row_of.get(key)
        if row is None or image.isNull():
            return
        self._thumbs[key] = QPixmap.fromImage(image)
        while len(self._thumbs) > THUMB_CACHE:
            self._thumbs.popitem(last=False)
        index = self.index(row, COL_THUMB)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def shutdown(self) -> None:
        self._pool.clear()
        self._pool.waitForDone(2000)


class BatchFilterProxy(QSortFilterProxyModel):
    """Filter by class (or errors only) and by a minimum confidence; sorts on raw values."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.class_filter = ALL_CLASSES
        self.min_confidence = 0.0
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_class_filter(self, name: str) -> None:
        self.beginFilterChange()
        self.class_filter = name or ALL_CLASSES
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_min_confidence(self, value: float) -> None:
        self.beginFilterChange()
        self.min_confidence = value
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802 - Qt override
        model = self.sourceModel()
        assert isinstance(model, BatchTableModel)
        result = model.results[source_row]
        if not result.ok:
            return self.class_filter in (ALL_CLASSES, ERRORS_ONLY)
        if self.class_filter == ERRORS_ONLY:
            return False
        if self.class_filter == UNKNOWN_ONLY:
            return bool(result.unknown) and (result.confidence or 0.0) >= self.min_confidence
        if self.class_filter == MISCLASSIFIED:
            truth = model.truth.true_label(result.path) if model.truth is not None else None
            if truth is None or result.label == truth:
                return False
            return (result.confidence or 0.0) >= self.min_confidence
        if self.class_filter != ALL_CLASSES and result.label != self.class_filter:
            return False
        return (result.confidence or 0.0) >= self.min_confidence

    def visible_results(self) -> list[BatchResult]:
        """The rows shown, in the order shown."""
        model = self.sourceModel()
        assert isinstance(model, BatchTableModel)
        return [model.results[self.mapToSource(self.index(row, 0)).row()] for row in range(self.rowCount())]


def make_results_table(proxy: BatchFilterProxy) -> QTableView:
    """The results table: thumbnails, a stretching path column, sortable, in arrival order at first."""
    table = QTableView()
    table.setModel(proxy)
    table.setSortingEnabled(True)
    table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # arrival order until a header is clicked
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
    table.verticalHeader().setDefaultSectionSize(THUMB_SIZE + 6)
    table.verticalHeader().hide()
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
    header.resizeSection(0, THUMB_SIZE + 10)
    header.setSectionResizeMode(COL_PATH, QHeaderView.ResizeMode.Stretch)
    header.setSectionResizeMode(COL_CONFIDENCE, QHeaderView.ResizeMode.Interactive)
    header.resizeSection(COL_CONFIDENCE, 180)
    return table


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class BatchSignals(QObject):
    labelled = Signal(object)  # FolderLabels or None, before any results
    results = Signal(list)  # list[BatchResult], one batch
    progress = Signal(object)  # BatchProgress
    failed = Signal(str)
    finished = Signal(bool)  # cancelled


class BatchTask(QRunnable):
    """Classify a folder, skipping files the state already holds; saves the state as it goes.

    First it looks whether the folder is labelled (sub-folders named after the classes):
    that reads the disk, so it happens here, and `labelled` reports it before any result.
    """

    def __init__(self, classifier: Classifier, folder: Path, state: BatchState, batch_size: int | None = None) -> None:
        super().__init__()
        self.classifier = classifier
        self.folder = folder
        self.state = state
        self.batch_size = batch_size
        self.signals = BatchSignals()
        self.cancel_event = threading.Event()

    def run(self) -> None:
        last_save = time.monotonic()
        try:
            self.signals.labelled.emit(detect_labelled_folder(self.folder, self.classifier.model.info.labels))
            for results in run_batch(
                self.classifier,
                [self.folder],
                skip=self.state.finished.keys(),
                batch_size=self.batch_size,
                cancel=self.cancel_event,
                progress=self.signals.progress.emit,
            ):
                self.state.add(results)
                self.signals.results.emit(results)
                if time.monotonic() - last_save > STATE_SAVE_INTERVAL_S:
                    self.state.save()
                    last_save = time.monotonic()
            self.state.save()
        except Exception as error:  # noqa: BLE001 - reported in the view, never a crash
            self.signals.failed.emit(first_line(error))
        finally:
            self.signals.finished.emit(self.cancel_event.is_set())


class JobSignals(QObject):
    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(str)


class JobTask(QRunnable):
    """Run `function(cancel_event, progress)` off the GUI thread (sorting, undo)."""

    def __init__(self, function: Callable[[threading.Event, Callable[[int, int], None]], Any]) -> None:
        super().__init__()
        self.function = function
        self.signals = JobSignals()
        self.cancel_event = threading.Event()

    def run(self) -> None:
        try:
            result = self.function(self.cancel_event, self.signals.progress.emit)
        except Exception as error:  # noqa: BLE001 - a worker reports any failure to the GUI instead of dying
            self.signals.failed.emit(first_line(error))
        else:
            self.signals.done.emit(result)
