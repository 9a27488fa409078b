"""The Batch tab's questions to the user, one small method each.

Kept apart from the view so the view stays about classifying, and so tests can answer
any of them by replacing one method on the instance.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from desktop.core.exporters import exporter
from desktop.core.sorting import undoable_log
from desktop.qt.plain_text import message_box


class BatchDialogs:
    """Mixin for BatchView: `self` is the view (a QWidget with `threshold` and `undo_dest`)."""

    threshold: float
    undo_dest: Path | None

    def show_message(self, title: str, text: str, error: bool = False) -> None:
        icon = QMessageBox.Icon.Warning if error else QMessageBox.Icon.Information
        message_box(icon, title, text, QMessageBox.StandardButton.Ok, self).exec()

    def choose_folder(self) -> Path | None:
        name = QFileDialog.getExistingDirectory(self, "Classify folder")
        return Path(name) if name else None

    def ask_resume(self, folder: Path, finished: int) -> str:
        """'resume', 'restart' or 'cancel' for a folder with earlier progress."""
        box = message_box(
            QMessageBox.Icon.Question,
            "Resume batch?",
            f"{finished} images in {folder} were already classified with this model.",
            parent=self,
        )
        box.setInformativeText("Resume skips them; Start over classifies everything again.")
        resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
        restart = box.addButton("Start over", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return "resume" if box.clickedButton() is resume else "restart" if box.clickedButton() is restart else "cancel"

    def choose_export_path(self, kind: str) -> Path | None:
        format_ = exporter(kind)
        name, _ = QFileDialog.getSaveFileName(self, f"Export {format_.name}", f"results.{kind}", format_.file_filter)
        return Path(name) if name else None

    def choose_sort_options(self) -> tuple[Path, bool] | None:
        """(destination folder, move?) or None when cancelled."""
        name = QFileDialog.getExistingDirectory(self, "Sort into folders: choose the destination")
        if not name:
            return None
        box = message_box(
            QMessageBox.Icon.Question,
            "Copy or move?",
            f"Copy or move the images into {name}/<class>/? "
            f"Images under {self.threshold:.0%} go to _unsure/, images the model calls unknown to _unknown/. "
            "A move can be undone.",
            parent=self,
        )
        copy = box.addButton("Copy", QMessageBox.ButtonRole.AcceptRole)
        move = box.addButton("Move", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() not in (copy, move):
            return None
        return Path(name), box.clickedButton() is move

    def choose_undo_log(self) -> Path | None:
        start = str(undoable_log(self.undo_dest) or self.undo_dest) if self.undo_dest else ""
        name, _ = QFileDialog.getOpenFileName(
            self, "Undo a sort: choose its log", start, "Sort logs (sort-log-*.jsonl)"
        )
        return Path(name) if name else None
