"""The side list of opened images, each with its top class once classified."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from desktop.core.classifier import Prediction
from desktop.qt.plain_text import tooltip

PATH_ROLE = Qt.ItemDataRole.UserRole


class ImageList(QListWidget):
    """Opened images in order; selecting one emits `path_selected`."""

    path_selected = Signal(object)  # Path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(160)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._items: dict[Path, QListWidgetItem] = {}
        self.currentItemChanged.connect(self._on_current_changed)

    def add_paths(self, paths: list[Path]) -> list[Path]:
        """Append paths not listed yet; return the ones added."""
        added = []
        for path in paths:
            if path in self._items:
                continue
            item = QListWidgetItem(path.name)
            item.setData(PATH_ROLE, str(path))
            item.setToolTip(tooltip(str(path)))
            self.addItem(item)
            self._items[path] = item
            added.append(path)
        return added

    def paths(self) -> list[Path]:
        return [Path(self.item(row).data(PATH_ROLE)) for row in range(self.count())]

    def current_path(self) -> Path | None:
        item = self.currentItem()
        return Path(item.data(PATH_ROLE)) if item is not None else None

    def select_path(self, path: Path) -> None:
        item = self._items.get(path)
        if item is not None:
            self.setCurrentItem(item)

    def show_result(self, prediction: Prediction) -> None:
        item = self._items.get(prediction.path) if prediction.path is not None else None
        if item is None:
            return
        name = prediction.path.name
        if prediction.error is not None:
            item.setText(f"{name} — unreadable")
            item.setForeground(Qt.GlobalColor.red)
            item.setToolTip(tooltip(prediction.error))  # the reason on hover, without selecting the file
        elif prediction.unknown:
            item.setText(f"{name} — unknown")
        else:
            label, probability = prediction.top_k[0]
            item.setText(f"{name} — {label} {probability * 100:.0f}%")

    def reset_results(self) -> None:
        for path, item in self._items.items():
            item.setText(path.name)
            item.setToolTip(tooltip(str(path)))
            item.setData(Qt.ItemDataRole.ForegroundRole, None)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.path_selected.emit(Path(current.data(PATH_ROLE)))
