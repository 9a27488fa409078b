"""The Train tab's results: what a finished run got right and wrong, the fixes, and the model.

Shown when a run ends and when a run is picked in the runs list: accuracy, a per-class
precision/recall/F1 table, the confusion matrix (click a cell: its images open in the
gallery), and the gallery of mistakes, most confidently wrong first, with Move / Exclude /
Undo (train_results_gallery.py) and Retrain. Two runs picked: their metrics side by side.
"Export model…" and "Open in Classify" are train_export.py's.

Every file read here was written by another process, and a report can be big, so the
report (desktop.core.run_results) and the model for activation maps (load_model runs a
guarded probe first) are both read in workers; a newer request makes an older answer
stale (request numbers), so a slow read never paints over what the user picked since.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.core.classifier import Classifier
from desktop.core.model import load_model
from desktop.core.run_export import find_export
from desktop.core.run_history import summarize_run
from desktop.core.run_results import RunResults, compare_runs, read_run_results
from desktop.core.trainer_launcher import Launcher
from desktop.qt.plain_text import PlainLabel
from desktop.qt.train_export import ExportBox
from desktop.qt.train_install import CallTask
from desktop.qt.train_results_gallery import Gallery
from desktop.qt.train_results_tables import CompareModel, ConfusionModel, ScoresModel, fraction
from desktop.qt.workers import TaskRunner

NO_EXPORT = "Export the model to see activation maps on these images."
CLASSES_TAB, IMAGES_TAB, COMPARE_TAB = 0, 1, 2


def _table(model) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return view


class ResultsPanel(QWidget):
    """`retrain_clicked` (the tab starts a run with the same settings), `open_model_requested(str)`
    (the tab loads it in Classify), `dataset_edited(str)` (words: the dataset changed)."""

    retrain_clicked = Signal()
    open_model_requested = Signal(str)
    dataset_edited = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = TaskRunner(2, self)
        self.results: RunResults | None = None
        self.run_dir: Path | None = None
        self.fallback_dataset: Path | None = None
        self._request = 0
        self._build()
        self.clear("Pick a finished run to see its results.")

    def _build(self) -> None:
        self.summary = PlainLabel("")
        self.summary.setWordWrap(True)
        self.notes = PlainLabel("")
        self.notes.setWordWrap(True)
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip("Start a new run on the dataset as it is now, with the same settings")
        self.retrain_button.clicked.connect(self.retrain_clicked)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.retrain_button)
        self.export_box = ExportBox(self.runner)
        self.export_box.open_requested.connect(self.open_model_requested)
        self.export_box.exported.connect(self._on_exported)

        self.scores = ScoresModel()
        self.scores_view = _table(self.scores)
        self.scores_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.confusion = ConfusionModel()
        self.confusion_view = _table(self.confusion)
        self.confusion_view.setToolTip("Rows: true class; columns: predicted class. Click a cell to see its images")
        self.confusion_view.clicked.connect(self.open_cell)
        self.confusion_view.activated.connect(self.open_cell)
        classes = QSplitter(Qt.Orientation.Horizontal)
        classes.setChildrenCollapsible(False)
        classes.addWidget(self.scores_view)
        classes.addWidget(self.confusion_view)
        self.gallery = Gallery(self.runner)
        self.gallery.changed.connect(self.dataset_edited)
        self.compare = CompareModel()
        self.compare_view = _table(self.compare)
        self.compare_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tabs = QTabWidget()
        self.tabs.addTab(classes, "Classes")
        self.tabs.addTab(self.gallery, "Images")
        self.tabs.addTab(self.compare_view, "Compare")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.notes)
        layout.addWidget(self.export_box)
        layout.addWidget(self.tabs, 1)

    # what the tab tells the panel -------------------------------------------------------------
    def set_launcher(self, launcher: Launcher | None) -> None:
        self.export_box.set_launcher(launcher)

    def set_dataset(self, dataset: Path | None) -> None:
        """The dataset the tab has open: where changes go when the run does not name its own."""
        self.fallback_dataset = dataset

    def clear(self, why: str) -> None:
        self._request += 1
        self.results, self.run_dir = None, None
        self.summary.setText(why)
        self.notes.setVisible(False)
        self.retrain_button.setEnabled(False)
        self.scores.set_results(None)
        self.confusion.set_results(None)
        self.compare.set_comparison(None)
        self.export_box.set_run(None, self.export_box.launcher)
        self.gallery.set_context([], None)
        self.gallery.show_images([], "Misclassified")

    def show_run(self, run_dir: str | Path) -> None:
        """Read the run's report in a worker and show it; then its exported model for maps."""
        self._request += 1
        request, run_dir = self._request, Path(run_dir)
        self.summary.setText(f"Reading the results of {run_dir.name}…")
        task = CallTask(lambda: (read_run_results(run_dir), summarize_run(run_dir).data_dir))
        task.result_signals.succeeded.connect(lambda value: self._on_results(request, run_dir, *value))
        task.result_signals.failed.connect(lambda message: self._on_failed(request, run_dir, message))
        self.runner.start(task)

    def show_comparison(self, first: str | Path, second: str | Path) -> None:
        """Two runs' metrics side by side (the Compare tab of the results)."""
        self._request += 1
        request, a, b = self._request, Path(first), Path(second)
        self.summary.setText(f"Comparing {a.name} and {b.name}…")
        task = CallTask(lambda: (read_run_results(a), read_run_results(b)))
        task.result_signals.succeeded.connect(lambda pair: self._on_pair(request, a, b, *pair))
        task.result_signals.failed.connect(lambda message: self._on_failed(request, a, message))
        self.runner.start(task)

    # answers from the workers -------------------------------------------------------------
    def _on_failed(self, request: int, run_dir: Path, message: str) -> None:
        if request == self._request:
            self.clear(f"The results of {run_dir.name} could not be read: {message}")

    def _on_results(self, request: int, run_dir: Path, results: RunResults | None, data_dir: str | None) -> None:
        if request != self._request:
            return
        if results is None:
            self.clear(f"{run_dir.name} has no report yet (it is written when a run finishes).")
            return
        self.results, self.run_dir = results, run_dir
        self.summary.setText(
            f"{run_dir.name}: validation accuracy {fraction(results.accuracy)} on {results.images} images, "
            f"{len(results.misclassified)} misclassified"
            + (f", macro F1 {fraction(results.macro_f1)}" if results.macro_f1 is not None else "")
        )
        self.notes.setText("\n".join(results.notes))
        self.notes.setVisible(bool(results.notes))
        self.retrain_button.setEnabled(True)
        self.scores.set_results(results)
        self.confusion.set_results(results)
        self.compare.set_comparison(None)
        self.scores_view.resizeColumnsToContents()
        self.confusion_view.resizeColumnsToContents()
        self.export_box.set_run(run_dir, self.export_box.launcher)
        dataset = Path(data_dir) if data_dir and Path(data_dir).is_dir() else self.fallback_dataset
        self.gallery.set_context(results.labels, dataset)
        self.show_misclassified()
        self._load_maps(request, self.export_box.model_path or find_export(run_dir))

    def _on_pair(self, request: int, a: Path, b: Path, first: RunResults | None, second: RunResults | None) -> None:
        if request != self._request:
            return
        missing = [run.name for run, results in ((a, first), (b, second)) if results is None]
        if missing:
            self.clear(f"No report to compare in {', '.join(missing)} (a report is written when a run finishes).")
            return
        comparison = compare_runs(first, second)
        self.clear("")
        self.compare.set_comparison(comparison)
        self.compare_view.resizeColumnsToContents()
        self.summary.setText(
            f"{a.name}: {fraction(first.accuracy)}   vs   {b.name}: {fraction(second.accuracy)}   "
            f"(difference {self.compare.rows[0][3]} points)"
        )
        self.tabs.setCurrentIndex(COMPARE_TAB)

    # the gallery ---------------------------------------------------------------------------
    def show_misclassified(self) -> None:
        if self.results is not None:
            self.gallery.show_images(self.results.misclassified, "Misclassified, most confidently wrong first")

    def open_cell(self, index: QModelIndex) -> None:
        """A confusion-matrix cell's images in the gallery."""
        cell = self.confusion.cell(index)
        if cell is None or self.results is None:
            return
        true, predicted = cell
        self.gallery.show_images(self.results.cell_images(true, predicted), f"{true} predicted as {predicted}")
        self.tabs.setCurrentIndex(IMAGES_TAB)

    def _on_exported(self, path: str) -> None:
        """A fresh export of the shown run: its maps go on the thumbnails."""
        if self.results is not None and self.export_box.run_dir == self.run_dir:
            self._load_maps(self._request, Path(path))

    def _load_maps(self, request: int, model_path: Path | None) -> None:
        if model_path is None:
            self.gallery.set_classifier(None, NO_EXPORT)
            return
        self.gallery.maps_label.setText(f"Loading {model_path.name} for activation maps…")
        task = CallTask(lambda: Classifier(load_model(model_path, provider="cpu")))
        task.result_signals.succeeded.connect(lambda classifier: self._on_model(request, model_path, classifier))
        task.result_signals.failed.connect(lambda message: self._on_model(request, model_path, None, message))
        self.runner.start(task)

    def _on_model(self, request: int, path: Path, classifier: Classifier | None, message: str = "") -> None:
        if request != self._request or self.results is None:
            return
        if classifier is None:
            self.gallery.set_classifier(None, f"No activation maps: {path.name} could not be loaded ({message}).")
        elif sorted(classifier.model.info.labels) != sorted(self.results.labels):
            self.gallery.set_classifier(None, f"No activation maps: {path.name} has other classes than this run.")
        elif not classifier.model.info.has_cam:
            self.gallery.set_classifier(None, f"No activation maps: {path.name} has no activation-map output.")
        else:
            self.gallery.set_classifier(
                classifier, f"Activation maps of the predicted class, from {path.name} (what the model looked at)."
            )

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self.export_box.shutdown()
        self.runner.shutdown(timeout_ms)
