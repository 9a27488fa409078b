"""The results area's tables: per-class scores, the confusion matrix, and two runs compared.

Plain QAbstractTableModels over desktop.core.run_results, so the views stay QTableViews
(sortable, keyboard-navigable, copyable) and the numbers are formatted in one place.
Class names are strangers' text: they are only ever DisplayRole text (plain in a
QTableView) or tooltips through `tooltip()`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from desktop.core.run_results import RunComparison, RunResults
from desktop.qt.plain_text import tooltip

Index = QModelIndex | QPersistentModelIndex
DISPLAY, TOOLTIP = Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole


def fraction(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def signed(value: float | None) -> str:
    """A difference in percentage points, with its sign ("+2.5", "−1.0", "0.0")."""
    if value is None:
        return "–"
    points = 100 * value
    return f"{points:+.1f}".replace("-", "−") if abs(points) >= 0.05 else "0.0"


class _Table(QAbstractTableModel):
    headers: list[str] = []

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = DISPLAY) -> Any:  # noqa: N802 - Qt override
        if role == DISPLAY and orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.headers):
            return self.headers[section]
        return None


class ScoresModel(_Table):
    """One row per class: class, precision, recall, F1, images."""

    headers = ["Class", "Precision", "Recall", "F1", "Images"]

    def __init__(self) -> None:
        super().__init__()
        self.results: RunResults | None = None

    def set_results(self, results: RunResults | None) -> None:
        self.beginResetModel()
        self.results = results
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() or self.results is None else len(self.results.per_class)

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if self.results is None or not index.isValid():
            return None
        score = self.results.per_class[index.row()]
        if role == DISPLAY:
            values = [score.name, fraction(score.precision), fraction(score.recall), fraction(score.f1)]
            return (values + [str(score.support)])[index.column()]
        if role == TOOLTIP and index.column() == 0:
            return tooltip(score.name)
        return None


class ConfusionModel(_Table):
    """Rows: true class, columns: predicted class; counts coloured by the share of the true
    class (as training's confusion_matrix.png), off-diagonal cells in red, the diagonal in blue."""

    def __init__(self) -> None:
        super().__init__()
        self.results: RunResults | None = None
        self.headers = []

    def set_results(self, results: RunResults | None) -> None:
        self.beginResetModel()
        self.results = results
        self.headers = list(results.labels) if results else []
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() or self.results is None else len(self.results.labels)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = DISPLAY) -> Any:  # noqa: N802 - Qt override
        if role == DISPLAY and 0 <= section < len(self.headers):
            return self.headers[section]
        return None

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if self.results is None or not index.isValid():
            return None
        row, column = index.row(), index.column()
        count = self.results.matrix[row][column]
        total = sum(self.results.matrix[row])
        share = count / total if total else 0.0
        if role == DISPLAY:
            return str(count)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.BackgroundRole and count:
            hue = QColor(40, 110, 200) if row == column else QColor(210, 60, 50)
            return QBrush(QColor(hue.red(), hue.green(), hue.blue(), int(40 + 200 * share)))
        if role == Qt.ItemDataRole.ForegroundRole and count and share > 0.55:
            return QBrush(QColor("white"))
        if role == TOOLTIP:
            labels = self.results.labels
            words = f"{count} image(s) of {labels[row]} predicted as {labels[column]} ({100 * share:.0f} % of {labels[row]})"
            return tooltip(words + ("\nDouble-click to see them" if count else ""))
        return None

    def cell(self, index: Index) -> tuple[str, str] | None:
        """(true class, predicted class) of a cell."""
        if self.results is None or not index.isValid():
            return None
        return self.results.labels[index.row()], self.results.labels[index.column()]


class CompareModel(_Table):
    """Two runs side by side: overall rows, then per class P/R/F1 of each run and b − a."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.deltas: list[list[float | None]] = []

    def set_comparison(self, comparison: RunComparison | None) -> None:
        self.beginResetModel()
        self.rows, self.deltas = [], []
        if comparison is not None:
            a, b = comparison.a.run_dir.name, comparison.b.run_dir.name
            self.headers = ["", f"{a}", f"{b}", "Difference"]
            self._add("Accuracy", comparison.a.accuracy, comparison.b.accuracy, comparison.accuracy_difference)
            self._add("Macro F1", comparison.a.macro_f1, comparison.b.macro_f1, comparison.macro_f1_difference)
            for item in comparison.classes:
                for what in ("precision", "recall", "f1"):
                    name = {"precision": "precision", "recall": "recall", "f1": "F1"}[what]
                    first, second = getattr(item.a, what, None), getattr(item.b, what, None)
                    self._add(f"{item.name}: {name}", first, second, item.difference(what))
        else:
            self.headers = []
        self.endResetModel()

    def _add(self, name: str, a: float | None, b: float | None, delta: float | None) -> None:
        self.rows.append([name, fraction(a), fraction(b), signed(delta)])
        self.deltas.append([delta])

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if not index.isValid():
            return None
        if role == DISPLAY:
            return self.rows[index.row()][index.column()]
        delta = self.deltas[index.row()][0]
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and index.column() == 3
            and delta is not None
            and abs(delta) >= 0.0005
        ):
            return QBrush(QColor(30, 140, 60) if delta > 0 else QColor(200, 50, 40))
        if role == TOOLTIP and index.column() == 0:
            return tooltip(self.rows[index.row()][0])
        return None
