"""The Augment tab's two building blocks: the variant grid and a slider+spin-box row.

Kept apart from augment_view.py so each module stays small; neither knows about models
or augmentation, they only show tiles and numbers.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSizePolicy, QSlider, QWidget

from desktop.qt.image_view import paint_drop_hint
from desktop.qt.imageconv import rgb_to_qpixmap

ROWS, COLUMNS = 3, 4
TILE_COUNT = ROWS * COLUMNS
EMPTY_HINT = "Drop an image here, or Open image… to preview augmentation"


class VariantGrid(QWidget):
    """Paints the variant tiles in a ROWS x COLUMNS grid, or a hint when there are none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(360, 280)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pixmaps: list[QPixmap] = []
        self._hint = EMPTY_HINT
        self.drag_active = False

    def set_tiles(self, tiles: list[np.ndarray]) -> None:
        self._pixmaps = [rgb_to_qpixmap(tile) for tile in tiles]
        self.update()

    def set_hint(self, text: str) -> None:
        self._hint = text
        self.update()

    def tile_count(self) -> int:
        return len(self._pixmaps)

    def hint(self) -> str:
        return self._hint

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(38, 40, 46))
        area = self.rect().adjusted(8, 8, -8, -8)
        if self._pixmaps:  # equal tiles, the whole block centred: no big gaps between rows
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            gap, first = 6, self._pixmaps[0]
            aspect = first.width() / max(first.height(), 1)
            tile_w = min(
                (area.width() - gap * (COLUMNS - 1)) / COLUMNS, (area.height() - gap * (ROWS - 1)) / ROWS * aspect
            )
            tile_h = tile_w / aspect
            left = area.left() + (area.width() - COLUMNS * tile_w - gap * (COLUMNS - 1)) / 2
            top = area.top() + (area.height() - ROWS * tile_h - gap * (ROWS - 1)) / 2
            for index, pixmap in enumerate(self._pixmaps[:TILE_COUNT]):
                row, column = divmod(index, COLUMNS)
                painter.drawPixmap(
                    QRect(
                        round(left + column * (tile_w + gap)),
                        round(top + row * (tile_h + gap)),
                        round(tile_w),
                        round(tile_h),
                    ),
                    pixmap,
                )
        else:
            paint_drop_hint(painter, area.adjusted(4, 4, -4, -4), area.adjusted(24, 0, -24, 0), self._hint)
        if self.drag_active:
            painter.fillRect(self.rect(), QColor(80, 140, 255, 60))
        painter.end()


class ParamRow(QWidget):
    """A slider and a spin box kept in step; emits the spin box's value."""

    changed = Signal(float)

    def __init__(self, maximum: float, step: float, decimals: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scale = round(1 / step)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, round(maximum * self.scale))
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, maximum)
        self.spin.setSingleStep(step)
        self.spin.setDecimals(decimals)
        self.spin.setFixedWidth(70)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.slider.valueChanged.connect(lambda v: self.spin.setValue(v / self.scale))
        self.spin.valueChanged.connect(self._on_spin)

    def _on_spin(self, value: float) -> None:
        with QSignalBlocker(self.slider):
            self.slider.setValue(round(value * self.scale))
        self.changed.emit(value)

    def set_value(self, value: float) -> None:
        """Show `value` without emitting `changed` (programmatic updates)."""
        with QSignalBlocker(self.spin), QSignalBlocker(self.slider):
            self.spin.setValue(value)
            self.slider.setValue(round(value * self.scale))
