"""The Adopt dialog's live-prediction panel: the picture as the model sees it, and its top classes.

Kept apart from the dialog's settings form so each stays readable; it only draws what
desktop/core/adopt_preview.py computed (in the dialog's worker), never computes anything.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGroupBox, QPushButton, QVBoxLayout

from desktop.core.adopt_preview import PreviewResult
from desktop.qt.plain_text import PlainLabel

PICTURE_SIDE = 160


class AdoptPreviewPanel(QGroupBox):
    """`picture_button` asks for another picture (the dialog connects it)."""

    def __init__(self) -> None:
        super().__init__("Live prediction (the original model)")
        self.picture = PlainLabel()
        self.picture.setFixedSize(PICTURE_SIDE, PICTURE_SIDE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("border: 1px solid palette(mid);")
        self.picture_button = QPushButton("Choose picture…")
        self.answers = PlainLabel("")
        self.answers.setWordWrap(True)
        self.answers.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.answers.setMinimumWidth(220)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(PlainLabel("What the model sees"), 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.answers, 1)
        layout.addWidget(self.picture_button)

    def show_message(self, text: str) -> None:
        self.answers.setText(text)

    def show_result(self, result: PreviewResult) -> None:
        """The top classes with percentages, and the fitted picture (resize mode applied)."""
        self.answers.setText("\n".join(f"{p * 100:5.1f}%  {name}" for name, p in result.top_k))
        picture = np.ascontiguousarray(result.model_input)
        height, width = picture.shape[:2]
        image = QImage(picture.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        self.picture.setPixmap(
            QPixmap.fromImage(image).scaled(
                self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )
