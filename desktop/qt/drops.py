"""Dropping files on a view, written once: the Classify picture, Compare, Batch and Augment use it.

A drag that carries nothing the widget takes is refused on entry, so the cursor says so
before the drop; one that does is highlighted while it is over the widget.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

from desktop.core.adoption import is_model_source


def local_files(event: QDropEvent | QDragEnterEvent | QDragMoveEvent) -> list[Path]:
    """Local file paths carried by a drag, in the order given."""
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


def _model_opener(widget) -> object | None:
    """The window's `open_model_source(path)` (MainWindow), if this widget is in such a window."""
    window = widget.window() if hasattr(widget, "window") else None
    return getattr(window, "open_model_source", None)


class FileDrops:
    """Mixin for a QWidget (before QWidget in the bases; call setAcceptDrops(True)).

    Override `take_drop` (the wanted paths, never empty), and if needed `wanted` (which
    dropped paths this widget takes: all by default) and `set_drop_highlight`.
    A dropped model (.onnx, .h5/.keras, a SavedModel/Lobe/Teachable Machine folder) goes
    to the window to open or adopt, wherever it is dropped, unless `sends_models_to_window`
    is False (Compare takes a dropped .onnx as its second model).
    """

    sends_models_to_window = True

    def _split_models(self, paths: list[Path]) -> tuple[list[Path], list[Path]]:
        """(models for the window, the rest) of the dropped paths."""
        if not self.sends_models_to_window or _model_opener(self) is None:
            return [], paths
        models = [p for p in paths if is_model_source(p)]
        return models, [p for p in paths if p not in models]

    def _takes(self, paths: list[Path]) -> bool:
        models, rest = self._split_models(paths)
        return bool(models) or bool(self.wanted(rest))

    def wanted(self, paths: list[Path]) -> list[Path]:
        return paths

    def set_drop_highlight(self, on: bool) -> None:
        """Show (or stop showing) that a drop would be taken here."""

    def take_drop(self, paths: list[Path]) -> None:
        raise NotImplementedError

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if self._takes(local_files(event)):
            self.set_drop_highlight(True)
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        if self._takes(local_files(event)):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.set_drop_highlight(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self.set_drop_highlight(False)
        models, rest = self._split_models(local_files(event))
        paths = self.wanted(rest)
        if not paths and not models:
            event.ignore()
            return
        event.acceptProposedAction()
        if models:
            _model_opener(self)(models[0])
        if paths:
            self.take_drop(paths)
