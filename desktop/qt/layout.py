"""Small layout helpers the views share (widgets only; no view logic)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QWidget


def hbox(*items: QWidget | int | tuple[QWidget, int], parent: QWidget | None = None) -> QHBoxLayout:
    """A horizontal row: widgets, (widget, stretch) pairs, and ints as spacing."""
    row = QHBoxLayout(parent) if parent is not None else QHBoxLayout()
    for item in items:
        if isinstance(item, int):
            row.addSpacing(item)
        elif isinstance(item, tuple):
            row.addWidget(*item)
        else:
            row.addWidget(item)
    return row
