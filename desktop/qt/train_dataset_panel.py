"""The Train tab's dataset panel: pick a folder of class folders, see what training will see.

A thin view over desktop.core.dataset_scan: the scan (and the thumbnails) run in a
worker (desktop.qt.train_dataset_worker) with a progress bar and a Cancel button, never
on the GUI thread; a newer scan makes any older one's results stale (a generation
number), so picking folders quickly never shows the wrong one. Class names, file names
and reasons come from the user's disk, so every text is plain text (desktop.qt.plain_text).

Signals: `dataset_changed(Path | None)` when the folder changes, `scan_finished(DatasetScan)`
when a scan's result is shown. The tab container calls `shutdown()` on close.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.core.dataset_scan import DatasetScan
from desktop.qt.drops import FileDrops
from desktop.qt.imageconv import rgb_to_qpixmap
from desktop.qt.plain_text import PlainLabel
from desktop.qt.train_dataset_worker import THUMB_PX, DatasetScanTask
from desktop.qt.workers import TaskRunner

MAX_WARNING_ROWS = 500  # a folder of 50,000 broken files lists the first ones and a count
COLUMNS = ("Class", "Images", "Samples")


class DatasetPanel(FileDrops, QWidget):
    dataset_changed = Signal(object)  # Path | None
    scan_finished = Signal(object)  # DatasetScan

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._path: Path | None = None
        self._scan: DatasetScan | None = None
        self._generation = 0
        self._task: DatasetScanTask | None = None
        self.runner = TaskRunner(1, self)

        self.choose_button = QPushButton("Choose folder…")
        self.choose_button.setToolTip("A folder with one sub-folder of images per class (or drop one here)")
        self.choose_button.clicked.connect(self.choose_folder)
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.clicked.connect(self.rescan)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.path_label = PlainLabel("Drop a dataset folder here, or choose one.")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(self.choose_button)
        top.addWidget(self.path_label, 1)
        top.addWidget(self.rescan_button)
        top.addWidget(self.cancel_button)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.summary_label = PlainLabel("")
        self.summary_label.setWordWrap(True)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB_PX + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)

        self.warnings_label = PlainLabel("Warnings")
        self.warnings = QListWidget()
        self.warnings.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.table, 3)
        layout.addWidget(self.warnings_label)
        layout.addWidget(self.warnings, 2)
        self._set_busy(False)
        self.progress.hide()

    # -- public ------------------------------------------------------------------------

    def dataset(self) -> Path | None:
        return self._path

    def current_scan(self) -> DatasetScan | None:
        """The latest finished scan of the current folder (None while scanning or failed)."""
        return self._scan

    def set_dataset(self, path: str | Path | None) -> None:
        """Show `path` (None: no dataset) and scan it in the background."""
        new = Path(path) if path is not None else None
        changed = new != self._path
        self._path = new
        self.path_label.setText(str(new) if new is not None else "Drop a dataset folder here, or choose one.")
        if changed:
            self.dataset_changed.emit(new)
        self.rescan()

    def rescan(self) -> None:
        """Scan the current folder again (after edits, or after files changed on disk)."""
        self.cancel_scan()
        self._scan = None
        self._clear()
        if self._path is None:
            self.summary_label.setText("")
            self._set_busy(False)
            return
        self._generation += 1
        task = DatasetScanTask(self._path, self._generation)
        task.signals.progress.connect(self._on_progress)
        task.signals.scanned.connect(self._on_scanned)
        task.signals.failed.connect(self._on_failed)
        task.signals.finished.connect(self._on_task_finished)
        self._task = task
        self.summary_label.setText("Scanning…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self._set_busy(True)
        self.runner.start(task)

    def cancel_scan(self) -> None:
        """Stop the running scan; its results, if any arrive, are ignored."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self._generation += 1
            self.summary_label.setText("Scan cancelled.")
            self.progress.hide()
            self._set_busy(False)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Cancel the scan and wait for the worker, so none outlives the window."""
        self.cancel_scan()
        self.runner.shutdown(timeout_ms)

    def choose_folder(self) -> None:
        start = str(self._path) if self._path is not None else ""
        folder = QFileDialog.getExistingDirectory(self, "Choose a dataset folder", start)
        if folder:
            self.set_dataset(Path(folder))

    # -- drops -------------------------------------------------------------------------

    def wanted(self, paths: list[Path]) -> list[Path]:
        return [path for path in paths if path.is_dir()][:1]

    def take_drop(self, paths: list[Path]) -> None:
        self.set_dataset(paths[0])

    def set_drop_highlight(self, on: bool) -> None:
        self.table.setStyleSheet("QTableWidget { border: 2px solid palette(highlight); }" if on else "")

    # -- results -----------------------------------------------------------------------

    def _on_progress(self, done: int, total: int, generation: int) -> None:
        if generation != self._generation:
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.summary_label.setText(f"Checking images: {done} of {total}" if total else "Listing folders…")

    def _on_failed(self, message: str, generation: int) -> None:
        if generation != self._generation:
            return
        self._task = None
        self.progress.hide()
        self._set_busy(False)
        self.summary_label.setText(message)

    def _on_task_finished(self, task: QObject) -> None:
        if task is self._task:  # ended without a result (cancelled from elsewhere)
            self._task = None
            self.progress.hide()
            self._set_busy(False)

    def _on_scanned(self, scan: DatasetScan, strips: dict, generation: int) -> None:
        if generation != self._generation:
            return
        self._task = None
        self._scan = scan
        self.progress.hide()
        self._set_busy(False)
        self._fill_table(scan, strips)
        self._fill_warnings(scan)
        self.summary_label.setText(self._summary(scan))
        self.scan_finished.emit(scan)

    def _summary(self, scan: DatasetScan) -> str:
        text = f"{scan.total_images} images in {len(scan.classes)} classes"
        if scan.unreadable:
            text += f", {len(scan.unreadable)} unreadable"
        if not scan.trainable:
            text += ". Training would refuse this folder: see the warnings."
        return text

    def _fill_table(self, scan: DatasetScan, strips: dict) -> None:
        self.table.setRowCount(len(scan.classes))
        for row, info in enumerate(scan.classes):
            self.table.setItem(row, 0, QTableWidgetItem(info.name))
            count = QTableWidgetItem(str(info.count))
            count.setData(Qt.ItemDataRole.UserRole, info.count)
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 1, count)
            thumbs = PlainLabel("")
            if info.name in strips:
                thumbs.setPixmap(rgb_to_qpixmap(strips[info.name]))
            self.table.setCellWidget(row, 2, thumbs)

    def _fill_warnings(self, scan: DatasetScan) -> None:
        for warning in scan.warnings[:MAX_WARNING_ROWS]:
            prefix = "Training refuses: " if warning.blocks_training else ""
            self.warnings.addItem(prefix + warning.message)
        if len(scan.warnings) > MAX_WARNING_ROWS:
            self.warnings.addItem(f"… and {len(scan.warnings) - MAX_WARNING_ROWS} more")
        self.warnings_label.setText(f"Warnings ({len(scan.warnings)})" if scan.warnings else "No warnings")

    def _clear(self) -> None:
        self.table.setRowCount(0)
        self.warnings.clear()
        self.warnings_label.setText("Warnings")

    def _set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.rescan_button.setEnabled(self._path is not None and not busy)

    def class_counts(self) -> dict[str, int]:
        """The table's class names and counts, as shown (for the tab and its tests)."""
        return {
            self.table.item(row, 0).text(): int(self.table.item(row, 1).text()) for row in range(self.table.rowCount())
        }

    def warning_texts(self) -> list[str]:
        return [self.warnings.item(row).text() for row in range(self.warnings.count())]
