"""The Batch tab's accuracy panel: shown when the folder's sub-folders name the classes.

A summary line (running accuracy) and a per-class table (images, correct, accuracy,
the class most often predicted instead). The tally itself is desktop.core.labelled's;
this only shows it. Folder names are shown as plain text: they come from the disk.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QVBoxLayout, QWidget

from desktop.core.batch import BatchResult
from desktop.core.labelled import AccuracyTally, ClassTally, FolderLabels
from desktop.qt.plain_text import PlainLabel
from desktop.qt.table_model import FlatTableModel

COLUMNS = ("True class", "Images", "Correct", "Accuracy", "Most often taken for")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


class AccuracyTableModel(FlatTableModel):
    """One row per class folder; the rows are fixed when the run starts, only numbers change."""

    columns = COLUMNS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[ClassTally] = []

    def set_rows(self, rows: list[ClassTally]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def numbers_changed(self) -> None:
        if self.rows:
            self.dataChanged.emit(self.index(0, 1), self.index(len(self.rows) - 1, len(COLUMNS) - 1))

    def table_rows(self) -> list:
        return self.rows

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        tally = self.rows[index.row()]
        column = index.column()
        confusion = tally.top_confusion
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return tally.label
            if column == 1:
                return str(tally.images) + (f" (+{tally.unreadable} unreadable)" if tally.unreadable else "")
            if column == 2:
                return str(tally.correct)
            if column == 3:
                return f"{tally.accuracy:.1%}" if tally.accuracy is not None else "–"
            if column == 4:
                return f"{confusion[0]} ({confusion[1]})" if confusion else ""
        elif role == SORT_ROLE:  # a class with no image yet sorts after 100 %
            values = (
                tally.label,
                tally.images,
                tally.correct,
                tally.accuracy if tally.accuracy is not None else 2.0,
                confusion[1] if confusion else 0,
            )
            return values[column]
        elif role == Qt.ItemDataRole.TextAlignmentRole and column in (1, 2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _ByValueThenName(QSortFilterProxyModel):
    """Sorts on SORT_ROLE, ties by class name, so the order never depends on arrival order."""

    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:  # noqa: N802 - Qt override
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a != b:
            return a < b
        return left.siblingAtColumn(0).data(SORT_ROLE) < right.siblingAtColumn(0).data(SORT_ROLE)


class AccuracyPanel(QWidget):
    """Hidden unless the current run's folder is labelled; `add` as results arrive."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tally: AccuracyTally | None = None
        self.summary = PlainLabel("")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        font = self.summary.font()
        font.setBold(True)
        self.summary.setFont(font)
        self.model = AccuracyTableModel(self)
        self.proxy = _ByValueThenName(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setDynamicSortFilter(True)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)  # the weakest classes first
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(170)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)
        self.hide()

    @property
    def truth(self) -> FolderLabels | None:
        """The labelled folder of the current run (exports add its true classes), or None."""
        return self.tally.labels if self.tally is not None else None

    def clear(self) -> None:
        self.tally = None
        self.model.set_rows([])
        self.summary.setText("")
        self.hide()

    def start(self, labels: FolderLabels | None, results: Iterable[BatchResult] = ()) -> None:
        """Begin a tally for `labels` (None: an unlabelled folder, the panel stays hidden)."""
        self.clear()
        if labels is None:
            return
        self.tally = AccuracyTally(labels)
        self.model.set_rows(list(self.tally.classes.values()))
        self.add(results)
        self.show()

    def add(self, results: Iterable[BatchResult]) -> None:
        if self.tally is None:
            return
        self.tally.add(results)
        self.summary.setText(self.tally.summary())
        self.model.numbers_changed()

    def rows(self) -> list[list[str]]:
        """The table as shown, top to bottom (for tests and copying)."""
        return [
            [str(self.proxy.index(row, column).data()) for column in range(len(COLUMNS))]
            for row in range(self.proxy.rowCount())
        ]
