"""Text from models, datasets and file names is shown as plain text, never as Qt rich text.

Qt decides per string whether a QLabel's or a QMessageBox's text is HTML (Qt::AutoText,
the default), and always does so for tooltips. A model whose `backbone` or a label was
`<img src='/dev/zero'>` made the model panel load that "image": Qt read /dev/zero to
the end and the app grew to 16-23 GB without ever showing its window. A file name,
class name or error message with `<b>` in it would at best be shown wrongly.

So, in desktop/qt: every label is a `PlainLabel`, every message box comes from
`message_box`, and every tooltip goes through `tooltip`, which escapes the text and
marks it as rich text so the escapes are read back as the literal characters.
tests/desktop/test_plain_text.py checks the source for any other way in.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget


class PlainLabel(QLabel):
    """A QLabel that never interprets its text as HTML (Qt.TextFormat.PlainText)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)


def tooltip(text: str) -> str:
    """`text` as a tooltip that shows it literally.

    Tooltips have no text-format setting: Qt treats anything that looks like markup as
    rich text. Without `<` or `&` nothing can be markup and the text is used as it is
    (newlines and all); otherwise it is escaped, its newlines become <br>, and it is
    wrapped in <qt>, which is always rich text, so the escapes show the original
    characters.
    """
    if "<" not in text and "&" not in text:
        return text
    return "<qt>" + html.escape(text, quote=False).replace("\n", "<br>") + "</qt>"


def message_box(
    icon: QMessageBox.Icon,
    title: str,
    text: str,
    buttons: QMessageBox.StandardButton = QMessageBox.StandardButton.NoButton,
    parent: QWidget | None = None,
) -> QMessageBox:
    """A QMessageBox whose text and informative text are plain text (the title always is)."""
    box = QMessageBox(icon, title, "", buttons, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setText(text)
    return box
