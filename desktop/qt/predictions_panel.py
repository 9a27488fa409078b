"""Top-k classes as labelled horizontal bars."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QProgressBar, QVBoxLayout, QWidget

from desktop.core.classifier import Prediction

ROWS = 5
BAR_STEPS = 1000


class PredictionsPanel(QGroupBox):
    """Shows a prediction's top classes with confidences, or a message instead."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Predictions", parent)
        self.message = QLabel("No image yet.")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.names: list[QLabel] = []
        self.bars: list[QProgressBar] = []
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        for row in range(ROWS):
            name = QLabel()
            name.setMinimumWidth(70)
            name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            bar = QProgressBar()
            bar.setRange(0, BAR_STEPS)
            bar.setTextVisible(True)
            bar.setMinimumWidth(140)
            grid.addWidget(name, row, 0)
            grid.addWidget(bar, row, 1)
            self.names.append(name)
            self.bars.append(bar)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(grid)
        layout.addStretch(1)
        self._set_rows([])

    def _set_rows(self, top_k: list[tuple[str, float]]) -> None:
        for row, (name, bar) in enumerate(zip(self.names, self.bars)):
            visible = row < len(top_k)
            name.setVisible(visible)
            bar.setVisible(visible)
            if visible:
                label, probability = top_k[row]
                name.setText(label)
                name.setToolTip(label)
                bar.setValue(round(probability * BAR_STEPS))
                bar.setFormat(f"{probability * 100:.1f}%")
                font = name.font()
                font.setBold(row == 0)
                name.setFont(font)

    def show_prediction(self, prediction: Prediction) -> None:
        if prediction.error is not None:
            self.show_message(f"Could not classify this file:\n{prediction.error}")
            return
        self.message.setText(f"Top class: {prediction.top_label}")
        self._set_rows(prediction.top_k)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self._set_rows([])

    def displayed(self) -> list[tuple[str, str]]:
        """(class name, percentage text) of the visible rows, best first."""
        return [
            (name.text(), bar.format())
            for name, bar in zip(self.names, self.bars)
            if not name.isHidden()
        ]
