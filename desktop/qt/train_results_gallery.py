"""The results' image gallery: the images behind a confusion cell or every mistake, with the
fixes for a wrong label (move to its class, exclude it, undo) right beside them.

Thumbnails are decoded in a worker (a cell can hold thousands of big photos); with an
exported model of the run they also get the activation map of the class the model
predicted, drawn by desktop.core (Classifier + activation.overlay, the same code as the
Classify tab), so the user sees *what* the model looked at when it got an image wrong.

Changes go through desktop.core.dataset_edits.DatasetEdits (journaled, never
overwriting). A move or exclusion is one rename, done directly; after each change the
gallery shows where the image is now, and says in words what happened.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from convnet_common.imaging import ImageReadError, decode_image_rgb, read_image_bytes
from desktop.core.activation import overlay
from desktop.core.classifier import Classifier
from desktop.core.dataset_edits import DatasetEditError, DatasetEdits
from desktop.core.run_results import ImagePrediction
from desktop.qt.imageconv import rgb_to_qimage
from desktop.qt.plain_text import PlainLabel, tooltip
from desktop.qt.workers import BackgroundTask, TaskRunner

THUMB = 112
MAX_SHOWN = 500  # a cell of 10,000 images shows its 500 most confident
MAP_OPACITY = 0.45
PATH_ROLE = Qt.ItemDataRole.UserRole


def thumbnail(path: str, classifier: Classifier | None, predicted: str) -> tuple[QImage, bool]:
    """(thumbnail, whether the activation map is drawn on it); ImageReadError if unreadable."""
    map_drawn = False
    if classifier is not None:
        image, model_input = classifier.read_file(path)
        prediction = classifier.classify_batch([image], [Path(path)], inputs=model_input[None])[0]
    else:
        image, prediction = decode_image_rgb(read_image_bytes(path), Path(path).name), None
    height, width = image.shape[:2]
    scale = THUMB / max(height, width, 1)
    if scale != 1.0:  # small pictures (a 32 px digit) grow to the tile, pixels kept sharp
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_NEAREST)
    if prediction is not None and prediction.ok and prediction.cam is not None:
        labels = classifier.model.info.labels
        index = labels.index(predicted) if predicted in labels else prediction.top_index
        image = overlay(np.ascontiguousarray(image), prediction.cam[..., index], MAP_OPACITY)
        map_drawn = True
    return rgb_to_qimage(np.ascontiguousarray(image)), map_drawn


class _ThumbSignals(QObject):
    ready = Signal(str, object, bool, int)  # path, QImage, map drawn, generation
    unreadable = Signal(str, str, int)  # path, reason, generation


class ThumbnailTask(BackgroundTask):
    """Thumbnails (with maps when a classifier is given) for `rows`, one signal each."""

    def __init__(self, rows: list[tuple[str, str]], classifier: Classifier | None, generation: int) -> None:
        super().__init__()
        self.rows, self.classifier, self.generation = rows, classifier, generation
        self.thumb_signals = _ThumbSignals()

    def work(self) -> None:
        for path, predicted in self.rows:
            if self.cancelled:
                return
            try:
                image, drawn = thumbnail(path, self.classifier, predicted)
            except (ImageReadError, OSError, ValueError, cv2.error) as error:
                self.thumb_signals.unreadable.emit(path, str(error), self.generation)
                continue
            self.thumb_signals.ready.emit(path, image, drawn, self.generation)


class Gallery(QWidget):
    """Thumbnails with true → predicted (confidence), and Move / Exclude / Undo for the selected one.

    `changed(str)` says in words what a change did (the panel shows it; the dataset changed)."""

    changed = Signal(str)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.rows: list[ImagePrediction] = []
        self.labels: list[str] = []
        self.dataset: Path | None = None
        self.classifier: Classifier | None = None
        self.location: dict[str, str] = {}  # original path -> where a change put it
        self.maps_drawn = 0
        self._generation = 0
        self._task: ThumbnailTask | None = None
        self._build()
        self._update_actions()

    def _build(self) -> None:
        self.title = PlainLabel("")
        self.maps_label = PlainLabel("")
        self.maps_label.setWordWrap(True)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setGridSize(QSize(THUMB + 48, THUMB + 64))
        self.list.itemSelectionChanged.connect(self._update_actions)
        self.move_menu = QMenu(self)
        self.move_button = QToolButton()
        self.move_button.setText("Move to class ▸")
        self.move_button.setMenu(self.move_menu)
        self.move_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.exclude_button = QPushButton("Exclude from dataset")
        self.exclude_button.setToolTip("Moves the image aside into <dataset>.excluded (undoable)")
        self.exclude_button.clicked.connect(self.exclude_selected)
        self.undo_button = QPushButton("Undo last change")
        self.undo_button.clicked.connect(self.undo_last)
        self.status = PlainLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        actions = QHBoxLayout()
        for widget in (self.move_button, self.exclude_button, self.undo_button):
            actions.addWidget(widget)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.maps_label)
        layout.addWidget(self.list, 1)
        layout.addLayout(actions)
        layout.addWidget(self.status)

    # what is shown ---------------------------------------------------------------------------
    def set_context(self, labels: list[str], dataset: Path | None) -> None:
        """The run's classes (the Move menu) and the dataset folder changes go to."""
        self.labels, self.dataset = list(labels), dataset
        self.move_menu.clear()
        for name in self.labels:
            action = self.move_menu.addAction(name.replace("&", "&&"))
            action.triggered.connect(lambda _checked=False, n=name: self.move_selected(n))
        self._update_actions()

    def set_classifier(self, classifier: Classifier | None, note: str) -> None:
        """The run's exported model (maps are drawn with it) or None and why there are no maps."""
        self.classifier = classifier
        self.maps_label.setText(note)
        self._reload()

    def show_images(self, rows: list[ImagePrediction], title: str) -> None:
        self.rows = list(rows)
        shown = f" (the {MAX_SHOWN} most confident are shown)" if len(rows) > MAX_SHOWN else ""
        self.title.setText(f"{title}: {len(rows)} image(s){shown}")
        self._reload()

    def _reload(self) -> None:
        """Rebuild the items and start their thumbnails (the previous task is cancelled)."""
        self._generation += 1
        if self._task is not None:
            self._task.cancel()
        self.maps_drawn = 0
        self.list.clear()
        todo = []
        for row in self.rows[:MAX_SHOWN]:
            item = QListWidgetItem(self._caption(row))
            item.setData(PATH_ROLE, row.path)
            item.setToolTip(tooltip(self.current_path(row.path)))
            item.setSizeHint(QSize(THUMB + 44, THUMB + 60))
            self.list.addItem(item)
            todo.append((self.current_path(row.path), row.predicted))
        self._task = ThumbnailTask(todo, self.classifier, self._generation)
        self._task.thumb_signals.ready.connect(self._on_thumbnail)
        self._task.thumb_signals.unreadable.connect(self._on_unreadable)
        self.runner.start(self._task)
        self._update_actions()

    def _caption(self, row: ImagePrediction) -> str:
        moved = self.location.get(row.path)
        where = ""
        if moved is not None:
            where = "\n(excluded)" if self._excluded(moved) else f"\n(now in {Path(moved).parent.name})"
        return f"{Path(row.path).name}\n{row.true} → {row.predicted} {100 * row.confidence:.0f} %{where}"

    def _excluded(self, path: str) -> bool:
        return self.dataset is not None and not Path(path).is_relative_to(self.dataset)

    def _items(self, path: str) -> list[QListWidgetItem]:
        return [
            self.list.item(i)
            for i in range(self.list.count())
            if self.current_path(self.list.item(i).data(PATH_ROLE)) == path
        ]

    def _on_thumbnail(self, path: str, image: QImage, drawn: bool, generation: int) -> None:
        if generation != self._generation:
            return
        self.maps_drawn += int(drawn)
        for item in self._items(path):
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def _on_unreadable(self, path: str, reason: str, generation: int) -> None:
        if generation == self._generation:
            for item in self._items(path):
                item.setToolTip(tooltip(f"{path}\n{reason}"))

    def current_path(self, original: str) -> str:
        return self.location.get(original, original)

    def selected(self) -> ImagePrediction | None:
        items = self.list.selectedItems()
        if not items:
            return None
        original = items[0].data(PATH_ROLE)
        return next((row for row in self.rows if row.path == original), None)

    def select(self, original: str) -> None:
        for i in range(self.list.count()):
            self.list.item(i).setSelected(self.list.item(i).data(PATH_ROLE) == original)

    def _update_actions(self) -> None:
        can_edit = self.dataset is not None and self.selected() is not None
        self.move_button.setEnabled(can_edit and bool(self.labels))
        self.exclude_button.setEnabled(can_edit)
        self.undo_button.setEnabled(self.dataset is not None)

    # changes ---------------------------------------------------------------------------------
    def _edits(self) -> DatasetEdits | None:
        return DatasetEdits(self.dataset) if self.dataset is not None else None

    def move_selected(self, to_class: str) -> None:
        row, edits = self.selected(), self._edits()
        if row is None or edits is None:
            return
        self._change(
            row, lambda: edits.move(self.current_path(row.path), to_class), f"Moved {{name}} to class {to_class}"
        )

    def exclude_selected(self) -> None:
        row, edits = self.selected(), self._edits()
        if row is None or edits is None:
            return
        self._change(row, lambda: edits.exclude(self.current_path(row.path)), "Excluded {name}: it is now in {folder}")

    def _change(self, row: ImagePrediction, change, words: str) -> None:
        try:
            new_path = change()
        except DatasetEditError as error:
            self._say(f"Nothing changed: {error}")
            return
        self.location[row.path] = str(new_path)
        if os.path.normpath(str(new_path)) == os.path.normpath(row.path):
            del self.location[row.path]
        name = Path(row.path).name
        self._refresh(row.path)
        self._say(words.format(name=name, folder=Path(new_path).parent) + ". Undo last change puts it back.")

    def undo_last(self) -> None:
        edits = self._edits()
        if edits is None:
            return
        try:
            pending = edits.history()[-1:]
            report = edits.undo_last()
        except DatasetEditError as error:
            self._say(f"Nothing was undone: {error}")
            return
        for edit, _what in report.undone:
            for original, now in list(self.location.items()):
                if os.path.normpath(now) == os.path.normpath(str(edit.dst)):
                    if os.path.normpath(str(edit.src)) == os.path.normpath(original):
                        del self.location[original]
                    else:
                        self.location[original] = str(edit.src)
                    self._refresh(original)
        if not pending:
            self._say("Nothing to undo.")
        else:
            self._say("Undo: " + "; ".join(report.lines() or [report.summary()]))

    def _refresh(self, original: str) -> None:
        """Redraw the item of one image after a change (its caption and tooltip say where it is)."""
        row = next((r for r in self.rows if r.path == original), None)
        for i in range(self.list.count()):
            item = self.list.item(i)
            if row is not None and item.data(PATH_ROLE) == original:
                item.setText(self._caption(row))
                item.setToolTip(tooltip(self.current_path(original)))
        self._update_actions()

    def _say(self, words: str) -> None:
        self.status.setText(words)
        self.changed.emit(words)
