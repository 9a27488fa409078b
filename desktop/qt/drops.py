"""Dropping files on a view, written once: the Classify picture, Compare, Batch and Augment use it.

A drag that carries nothing the widget takes is refused on entry, so the cursor says so
before the drop; one that does is highlighted while it is over the widget.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent


def local_files(event: QDropEvent | QDragEnterEvent | QDragMoveEvent) -> list[Path]:
    """Local file paths carried by a drag, in the order given."""
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class FileDrops:
    """Mixin for a QWidget (before QWidget in the bases; call setAcceptDrops(True)).

    Override `take_drop` (the wanted paths, never empty), and if needed `wanted` (which
    dropped paths this widget takes: all by default) and `set_drop_highlight`.
    """

    def wanted(self, paths: list[Path]) -> list[Path]:
        return paths

    def set_drop_highlight(self, on: bool) -> None:
        """Show (or stop showing) that a drop would be taken here."""

    def take_drop(self, paths: list[Path]) -> None:
        raise NotImplementedError

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if self.wanted(local_files(event)):
            self.set_drop_highlight(True)
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        if self.wanted(local_files(event)):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.set_drop_highlight(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self.set_drop_highlight(False)
        paths = self.wanted(local_files(event))
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.take_drop(paths)
