"""The amber banner above the tabs: one or more notices and a button that closes them.

What it shows, and what stays closed, is decided by desktop.core.notices.NoticeBoard;
this widget only displays it (as plain text: notices quote file names and model text).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QToolButton, QWidget

from desktop.core.notices import Notice
from desktop.qt.plain_text import PlainLabel
from desktop.qt.theme import notice_style


class NoticeBar(QFrame):
    """Notices in one wrapped label; the × button emits `dismissed`."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noticeBar")
        self.label = PlainLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Close this notice")
        self.close_button.setAccessibleName("Close notice")
        self.close_button.clicked.connect(self.dismissed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.refresh_theme()

    def text(self) -> str:
        return self.label.text()

    def show_notices(self, notices: list[Notice]) -> None:
        self.label.setText("\n".join(n.text for n in notices))
        self.setVisible(bool(notices))

    def refresh_theme(self) -> None:
        """Re-style after a light/dark switch (the palette has no amber)."""
        # Style sheets do not pass colours to children: the label gets the amber rule too, less the box.
        self.setStyleSheet(
            notice_style(selector="QFrame#noticeBar, QFrame#noticeBar QLabel")
            + " QFrame#noticeBar QLabel { border: none; padding: 0; }"
        )
