"""The Batch tab's sorting into class folders and its undo, run as background jobs.

A mixin for BatchView, kept apart so the view stays about classifying a folder. The jobs
(desktop.core.sorting) run on the view's one-thread pool in a JobTask, never on the GUI
thread, and report through its signals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from desktop.core.sorting import SortReport, UndoReport, find_logs, sort_into_folders, undo_moves, undoable_log
from desktop.qt.batch_model import JobTask


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
                results, dest, threshold=threshold, move=move, cancel=cancel, progress=progress),
            f"{'Moving' if move else 'Copying'} into {dest}…", lambda report: self._on_sorted(report, move),
        )

    def set_undo_dest(self, dest: str | Path | None) -> bool:
        """Remember the folder of a sort whose moves can be undone (None: nothing to undo).

        Undo is offered only while such a folder holds a log of moves: before any sort
        there is nothing to undo. True when it does.
        """
        dest = Path(dest) if dest else None
        if dest is not None and undoable_log(dest) is None:
            dest = None
        if dest != self.undo_dest:
            self.undo_dest = dest
            self.undo_dest_changed.emit(dest)
        self._update_enabled()
        return dest is not None

    def choose_and_undo(self) -> None:
        log = self.choose_undo_log()
        if log is not None:
            self.undo_sort(log)

    def undo_sort(self, log_or_dest: str | Path) -> bool:
        """Undo the moves recorded in a sort log (or the newest log in a destination folder)."""
        path = Path(log_or_dest)
        if path.is_dir():
            logs = find_logs(path)
            if not logs:
                self.show_message("Nothing to undo", f"No sort log in {path}.", error=True)
                return False
            path = logs[0]
        return self._start_job(lambda cancel, progress: undo_moves(path, progress), "Undoing…",
                               lambda report: self._on_undone(report, path))

    def _start_job(self, function: Callable[..., Any], text: str, on_done: Callable[[Any], None]) -> bool:
        if self.busy:
            return False
        job = JobTask(function)
        job.signals.progress.connect(lambda done, total: (self.progress.setRange(0, max(1, total)), self.progress.setValue(done)))
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
        if report.cancelled:
            text = "Cancelled. " + text
        self._job_over(text)
        if move and report.placed:
            self.set_undo_dest(report.log_path.parent)
        if report.failed:
            lines = "\n".join(f"{path}: {reason}" for path, reason in report.failed[:20])
            self.show_message("Some images were not sorted", lines, error=True)

    def _on_undone(self, report: UndoReport, log: Path | None = None) -> None:
        self._job_over(f"Moved {len(report.restored)} images back.")
        if log is not None and not report.problems and self.undo_dest == log.parent:
            self.set_undo_dest(None)  # all of that sort is back: nothing left to undo
        if report.problems:
            lines = "\n".join(f"{path}: {reason}" for path, reason in report.problems[:20])
            self.show_message("Some moves could not be undone", lines, error=True)

    def _on_job_failed(self, text: str) -> None:
        self._job_over(f"Failed: {text}")
        self.show_message("Operation failed", text, error=True)
