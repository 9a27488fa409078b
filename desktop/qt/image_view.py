"""The drop zone: shows one image scaled to fit, or a hint when there is none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.qt.drops import FileDrops
from desktop.qt.imageconv import rgb_to_qpixmap

EMPTY_HINT = "Drop images here, or File → Open image…"


def paint_drop_hint(painter: QPainter, frame: QRect, text_area: QRect, text: str, font_scale: float = 1.0) -> None:
    """The empty drop zone every view shares: a dashed rounded frame and a centred hint."""
    pen = painter.pen()
    pen.setColor(QColor(150, 155, 165))
    pen.setStyle(Qt.PenStyle.DashLine)
    pen.setWidth(2)
    painter.setPen(pen)
    painter.drawRoundedRect(frame, 12, 12)
    painter.setPen(QColor(210, 214, 222))
    if font_scale != 1.0:
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * font_scale)
        painter.setFont(font)
    painter.drawText(text_area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)


class ImageView(FileDrops, QWidget):
    """Accepts dropped files and paints the current image centred and scaled to fit."""

    files_dropped = Signal(list)  # list[Path]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(38, 40, 46))
        self.setPalette(palette)
        self._pixmap: QPixmap | None = None
        self._hint = EMPTY_HINT
        self._drag_active = False

    # content -------------------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None) -> None:
        self._pixmap = rgb_to_qpixmap(rgb) if rgb is not None else None
        self.update()

    def set_hint(self, text: str) -> None:
        """Text shown when there is no image (empty state, loading, errors)."""
        self._hint = text
        self.update()

    def pixmap(self) -> QPixmap | None:
        return self._pixmap

    def hint(self) -> str:
        return self._hint

    # drag and drop (desktop/qt/drops.py) -----------------------------------------------
    def set_drop_highlight(self, on: bool) -> None:
        self._drag_active = on
        self.update()

    def take_drop(self, paths: list[Path]) -> None:
        self.files_dropped.emit(paths)

    # painting ------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        area = self.rect().adjusted(12, 12, -12, -12)
        if self._pixmap is not None and not self._pixmap.isNull():
            scaled = self._pixmap.size().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(area.center())
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(target, self._pixmap)
        else:
            paint_drop_hint(painter, area, area, self._hint, font_scale=1.25)
        if self._drag_active:
            painter.fillRect(self.rect(), QColor(80, 140, 255, 60))
        painter.end()
