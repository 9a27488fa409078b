"""Top-k classes as labelled horizontal bars; clicking a row picks the class whose map is shown.

The percentage is a label beside its bar, not text inside it. Text inside a bar is drawn
by the style: Fusion splits it into two colours where it computes the fill to end, which
is not exactly where it paints the fill; Qt's common style, which the other desktop
styles build on, draws centred text all in the highlighted colour (white) once the bar
is half full. Either way part of "52.6%" could come out white on the white empty part.
Beside the bar the text has the row's own colour over the row's own background, in
every style and theme, selected or not (tests/desktop/qt/test_prediction_bars.py measures it).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QGroupBox, QLabel, QProgressBar, QVBoxLayout, QWidget

from desktop.core.classifier import Prediction
from desktop.qt.plain_text import PlainLabel, tooltip

UNKNOWN_TEXT = "Unknown — unlike the {count} classes this model knows"


def verdict_text(prediction: Prediction) -> str:
    """The headline: "Unknown — unlike the N classes…" for an unknown image, else its top class."""
    if prediction.unknown:
        count = len(prediction.probabilities) if prediction.probabilities is not None else len(prediction.top_k)
        return UNKNOWN_TEXT.format(count=count)
    return f"Top class: {prediction.top_label}"


def score_text(prediction: Prediction) -> str:
    """The hover text: the unknown score and the threshold it was judged against ('' without one)."""
    if prediction.unknown_score is None:
        return ""
    text = f"Unknown score {prediction.unknown_score:.4g}"
    if prediction.unknown_threshold is not None:
        verdict = "over" if prediction.unknown else "not over"
        text += f", {verdict} the threshold {prediction.unknown_threshold:.4g}"
    return text + " (higher = more unlike the training images)"


ROWS = 5
BAR_STEPS = 1000


def top_indices(prediction: Prediction) -> list[int]:
    """Class indices of the top-k rows, in the order `Classifier` ranked them."""
    if prediction.probabilities is None:
        return []
    return [int(i) for i in np.argsort(-prediction.probabilities, kind="stable")[: len(prediction.top_k)]]


class _Row(QFrame):
    """One clickable class row; the frame is highlighted when it is the selected class."""

    clicked = Signal(int)  # row number

    def __init__(self, row: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row = row
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.greyed = False  # an unknown image's nearest classes: listed, but in grey
        self.name = PlainLabel()
        self.name.setTextFormat(Qt.TextFormat.PlainText)  # class names come from the model file
        self.name.setMinimumWidth(70)
        self.bar = QProgressBar()
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setTextVisible(False)  # see the module docstring
        self.bar.setMinimumWidth(120)
        self.bar.setMaximumHeight(self.fontMetrics().height() + 4)
        self.percent = PlainLabel()
        self.percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.percent.setMinimumWidth(self.fontMetrics().horizontalAdvance("100.0%") + 6)
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 2, 4, 2)
        grid.setColumnStretch(1, 1)
        grid.addWidget(self.name, 0, 0)
        grid.addWidget(self.bar, 0, 1)
        grid.addWidget(self.percent, 0, 2)
        self.set_selected(False)

    def set_selected(self, selected: bool) -> None:
        self.setBackgroundRole(self.palette().ColorRole.Highlight if selected else self.palette().ColorRole.Window)
        roles = self.palette().ColorRole
        text_role = roles.HighlightedText if selected else roles.PlaceholderText if self.greyed else roles.WindowText
        self.bar.setEnabled(not self.greyed)
        self.name.setForegroundRole(text_role)
        self.percent.setForegroundRole(text_role)
        self.setFrameShadow(QFrame.Shadow.Sunken if selected else QFrame.Shadow.Plain)
        self.setFrameShape(QFrame.Shape.StyledPanel if selected else QFrame.Shape.NoFrame)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.row)
        super().mousePressEvent(event)


class PredictionsPanel(QGroupBox):
    """Shows a prediction's top classes with confidences, or a message instead."""

    class_selected = Signal(int)  # class index (into the model's labels)

    def __init__(self, parent: QWidget | None = None, clickable: bool = True) -> None:
        super().__init__("Predictions", parent)
        self.clickable = clickable
        self.message = PlainLabel("No image yet.")
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # class names and file errors, never markup
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.rows: list[_Row] = [_Row(row) for row in range(ROWS)]
        self.names: list[QLabel] = [row.name for row in self.rows]
        self.bars: list[QProgressBar] = [row.bar for row in self.rows]
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        for row in self.rows:
            layout.addWidget(row)
            if clickable:
                row.clicked.connect(self.select_row)
            else:
                row.setCursor(Qt.CursorShape.ArrowCursor)
        self.hint = PlainLabel("Click a class to see its activation map.")
        self.hint.setEnabled(False)  # greyed: a hint, not content
        self.hint.setVisible(False)
        layout.addWidget(self.hint)
        layout.addStretch(1)
        self._indices: list[int] = []
        self.selected_row: int | None = None
        self._set_rows([])

    def _set_rows(self, top_k: list[tuple[str, float]], greyed: bool = False) -> None:
        for row, widget in enumerate(self.rows):
            widget.greyed = greyed
            visible = row < len(top_k)
            widget.setVisible(visible)
            if visible:
                label, probability = top_k[row]
                widget.name.setText(label)
                widget.setToolTip(tooltip(f"{label}: {probability * 100:.2f}%"))  # tooltips are always markup
                widget.bar.setValue(round(probability * BAR_STEPS))
                widget.percent.setText(f"{probability * 100:.1f}%")
                widget.bar.setAccessibleName(f"{label} {probability * 100:.1f}%")
                font = widget.name.font()
                font.setBold(row == 0 and not greyed)
                widget.name.setFont(font)
            widget.set_selected(False)
        self.selected_row = None

    def show_prediction(self, prediction: Prediction, show_hint: bool = False) -> None:
        """Show the rows with the top class selected (no signal: the viewer shows it already)."""
        if prediction.error is not None:
            self.show_message(f"Could not classify this file:\n{prediction.error}")
            return
        self.message.setText(verdict_text(prediction))
        self.message.setToolTip(tooltip(score_text(prediction)))
        self._indices = top_indices(prediction)
        self._set_rows(prediction.top_k, greyed=bool(prediction.unknown))
        self.hint.setVisible(self.clickable and show_hint)
        if self._indices and self.clickable and not prediction.unknown:  # none of them is the answer
            self._highlight(0)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setToolTip("")
        self._indices = []
        self.hint.setVisible(False)
        self._set_rows([])

    def select_row(self, row: int) -> None:
        """Highlight a row and announce its class index (what a click does)."""
        if 0 <= row < len(self._indices):
            self._highlight(row)
            self.class_selected.emit(self._indices[row])

    def _highlight(self, row: int) -> None:
        for number, widget in enumerate(self.rows):
            widget.set_selected(number == row)
        self.selected_row = row

    def displayed(self) -> list[tuple[str, str]]:
        """(class name, percentage text) of the visible rows, best first."""
        return [(row.name.text(), row.percent.text()) for row in self.rows if not row.isHidden()]
