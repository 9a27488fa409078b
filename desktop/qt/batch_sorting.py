"""The Batch tab's sorting into class folders and its undo, run as background jobs.

A mixin for BatchView, kept apart so the view stays about classifying a folder. The jobs
(desktop.core.sorting) run on the view's one-thread pool in a JobTask, never on the GUI
thread, and report through its signals.

Undo of a DEST folder means what convnet-undo-sort DEST means: every sort into DEST that
moved files and is not yet undone, newest first (a killed sort run again leaves two logs;
undoing only the newest left files behind). The Undo button asks first, saying how many
sorts and files; one chosen log undoes just that sort.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox

from desktop.core.sort_log import DestUndoReport, UndoReport, count_moves, pending_logs, undo_dest, undo_moves
from desktop.core.sorting import SortReport, sort_into_folders
from desktop.qt.batch_model import JobTask
from desktop.qt.plain_text import message_box


class BatchSorting:
    """Mixin for BatchView: `self` is the view (see its attributes and signals)."""

    def choose_and_sort(self) -> None:
        options = self.choose_sort_options()
        if options is not None:
            self.sort_into(*options)

    def sort_into(self, dest: str | Path, move: bool = False) -> bool:
        """Copy/move every classified image into DEST/<class>/ (below the threshold: _unsure/)."""
        results = [r for r in self.model.results if r.ok]
        threshold = self.threshold
        return self._start_job(
            lambda cancel, progress: sort_into_folders(
                results, dest, threshold=threshold, move=move, cancel=cancel, progress=progress
            ),
            f"{'Moving' if move else 'Copying'} into {dest}…",
            lambda report: self._on_sorted(report, move),
        )

    def set_undo_dest(self, dest: str | Path | None) -> bool:
        """Remember the folder of a sort whose moves can be undone (None: nothing to undo).

        Undo is offered only while such a folder holds a log of moves: before any sort
        there is nothing to undo. True when it does.
        """
        dest = Path(dest) if dest else None
        if dest is not None and not pending_logs(dest):
            dest = None
        if dest != self.undo_dest:
            self.undo_dest = dest
            self.undo_dest_changed.emit(dest)
        self._update_enabled()
        return dest is not None

    def choose_and_undo(self) -> None:
        """Undo every pending sort into the remembered DEST (after asking), or a chosen log."""
        if self.undo_dest is not None:
            answer = self.confirm_undo(self.undo_dest)
            if answer == "all":
                self.undo_sort(self.undo_dest)
                return
            if answer != "choose":
                return
        log = self.choose_undo_log()
        if log is not None:
            self.undo_sort(log)

    def undo_question(self, dest: Path) -> str:
        """The confirmation text: how many sorts and files an undo of `dest` would move back."""
        logs = pending_logs(dest)
        files = sum(count_moves(log) for log in logs)
        sorts = f"{len(logs)} sort{'s' if len(logs) != 1 else ''}"
        return f"Move {files} file{'s' if files != 1 else ''} of {sorts} into {dest} back where they came from?"

    def confirm_undo(self, dest: Path) -> str:
        """ "all", "choose" (pick one log instead) or "" (cancel); tests replace this."""
        box = message_box(
            QMessageBox.Icon.Question, "Undo sort?", self.undo_question(dest), QMessageBox.StandardButton.NoButton, self
        )
        undo_all = box.addButton("Undo all", QMessageBox.ButtonRole.AcceptRole)
        choose = box.addButton("Choose one log…", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return {undo_all: "all", choose: "choose"}.get(box.clickedButton(), "")

    def undo_sort(self, log_or_dest: str | Path) -> bool:
        """Undo one sort log, or every not-yet-undone sort into a destination folder."""
        path = Path(log_or_dest)
        if path.is_dir():
            if not pending_logs(path):
                self.show_message("Nothing to undo", f"No sort into {path} is left to undo.", error=True)
                return False
            return self._start_job(
                lambda cancel, progress: undo_dest(path, progress),
                "Undoing…",
                lambda report: self._on_undone(report, path),
            )
        return self._start_job(
            lambda cancel, progress: undo_moves(path, progress),
            "Undoing…",
            lambda report: self._on_undone(report, path.parent),
        )

    def _start_job(self, function: Callable[..., Any], text: str, on_done: Callable[[Any], None]) -> bool:
        if self.busy:
            return False
        job = JobTask(function)
        job.signals.progress.connect(
            lambda done, total: (self.progress.setRange(0, max(1, total)), self.progress.setValue(done))
        )
        job.signals.done.connect(on_done)
        job.signals.failed.connect(self._on_job_failed)
        self._job = job
        self.message.setText(text)
        self._update_enabled()
        self._pool.start(job)
        return True

    def _job_over(self, text: str) -> None:
        self._job = None
        self.message.setText(text)
        self.status_message.emit(text)
        self._update_enabled()

    def _on_sorted(self, report: SortReport, move: bool = False) -> None:
        text = f"Sorted {len(report.placed)} images; log: {report.log_path.name}."
        left = len(report.in_place) + len(report.left_in_dest)
        if left:
            text += f" {left} already in the destination's class folders were left alone."
        if report.cancelled:
            text = "Cancelled. " + text
        self._job_over(text)
        if move and report.placed:
            self.set_undo_dest(report.log_path.parent)
        if report.failed:
            lines = "\n".join(f"{path}: {reason}" for path, reason in report.failed[:20])
            self.show_message("Some images were not sorted", lines, error=True)

    def _on_undone(self, result: UndoReport | DestUndoReport, dest: Path | None = None) -> None:
        report = result.total() if isinstance(result, DestUndoReport) else result
        sorts = len(result.logs) if isinstance(result, DestUndoReport) else 1
        self._job_over(
            f"Moved {len(report.restored)} images back ({sorts} sort{'s' if sorts != 1 else ''}: {report.summary()})."
        )
        if dest is not None and self.undo_dest == dest:
            self.set_undo_dest(dest)  # clears itself once no sort into DEST is left to undo
        if report.problems:
            lines = "\n".join(f"{path}: {reason}" for path, reason in report.problems[:20])
            self.show_message("Some moves could not be undone", lines, error=True)

    def _on_job_failed(self, text: str) -> None:
        self._job_over(f"Failed: {text}")
        self.show_message("Operation failed", text, error=True)
