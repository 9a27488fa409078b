"""The Train tab's run panel: Start/Stop/Resume, live curves and progress, the end of a run,
and the runs already made on this dataset.

It only draws: `show_progress(RunProgress)` after each poll, `show_runs(list_runs(...))`
when the dataset or a run changes. The buttons emit signals the tab acts on, so the
process itself (desktop.core.training_run) stays in one place, the tab. Everything
shown here (errors, stderr lines, run and file names) is plain text.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.core import run_progress as tr
from desktop.core.run_history import RunSummary, chance_warning, read_history, report_files
from desktop.qt.plain_text import PlainLabel, tooltip
from desktop.qt.train_curves import CurvesWidget
from desktop.qt.train_results_panel import ResultsPanel

STATE_WORDS = {
    tr.STARTING: "Starting convnet-train (loading TensorFlow takes a while)…",
    tr.RUNNING: "Training",
    tr.STOPPING: "Stopping at the end of this step; the last finished epoch is kept…",
    tr.STOPPED: "Stopped",
    tr.DONE: "Done",
    tr.FAILED: "Failed",
}


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


class RunPanel(QWidget):
    """Buttons, curves, progress and results; `start_clicked`, `stop_clicked`,
    `resume_clicked` go to the tab, `runs_selected(list[Path])` when the list's selection changes."""

    start_clicked = Signal()
    stop_clicked = Signal()
    resume_clicked = Signal()
    runs_selected = Signal(object)  # list[Path], at most two

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: list[RunSummary] = []
        self._build()
        self.show_idle("")

    def _build(self) -> None:
        self.start_button = QPushButton("Start training")
        self.start_button.clicked.connect(self.start_clicked)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stops after the current step; the last finished epoch can be resumed")
        self.stop_button.clicked.connect(self.stop_clicked)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the interrupted run from its last saved epoch")
        self.resume_button.clicked.connect(self.resume_clicked)
        self.state_label = PlainLabel("")
        self.state_label.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(button)
        buttons.addWidget(self.state_label, 1)

        self.epoch_bar = QProgressBar()
        self.epoch_bar.setFormat("epoch %v / %m")
        self.batch_bar = QProgressBar()
        self.batch_bar.setFormat("step %v / %m")
        self.rate_label = PlainLabel("")
        self.rate_label.setMinimumWidth(240)
        bars = QHBoxLayout()
        bars.addWidget(self.epoch_bar, 1)
        bars.addWidget(self.batch_bar, 1)
        bars.addWidget(self.rate_label)

        self.curves = CurvesWidget()
        self.error_label = PlainLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stderr_box = QPlainTextEdit()
        self.stderr_box.setReadOnly(True)
        self.stderr_box.setMaximumBlockCount(500)
        self.stderr_box.setPlaceholderText("convnet-train's last lines")

        self.results_box = QGroupBox("Results")
        self.best_label = PlainLabel("")
        self.best_label.setWordWrap(True)  # a chance warning is a sentence or two
        self.report_list = QListWidget()
        self.report_list.setMaximumHeight(90)
        # A chance warning can be longer than the box is tall: it scrolls instead of being cut.
        best_scroll = QScrollArea()
        best_scroll.setWidgetResizable(True)
        best_scroll.setFrameShape(QFrame.Shape.NoFrame)
        best_scroll.setWidget(self.best_label)
        results = QVBoxLayout(self.results_box)
        results.addWidget(best_scroll, 1)
        results.addWidget(self.report_list)

        self.runs_tree = QTreeWidget()
        self.runs_tree.setHeaderLabels(["Run", "Date", "Network", "Best accuracy", "Status"])
        self.runs_tree.setRootIsDecorated(False)
        self.runs_tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.runs_tree.setToolTip("Select a run to see its curves; select two to compare them")
        self.runs_tree.itemSelectionChanged.connect(self._on_selection)
        runs_box = QGroupBox("Runs on this dataset")
        QVBoxLayout(runs_box).addWidget(self.runs_tree)

        bottom = QWidget()
        lower = QHBoxLayout(bottom)
        lower.setContentsMargins(0, 0, 0, 0)
        side = QVBoxLayout()
        side.addWidget(self.results_box)
        side.addWidget(self.stderr_box)
        lower.addLayout(side, 1)
        lower.addWidget(runs_box, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        self.results_panel = ResultsPanel()  # a finished run's metrics, mistakes, fixes and export
        self.views = QTabWidget()
        self.views.addTab(self.curves, "Curves")
        self.views.addTab(self.results_panel, "Results")
        splitter.addWidget(self.views)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addLayout(bars)
        layout.addWidget(self.error_label)
        layout.addWidget(splitter, 1)

    # buttons -------------------------------------------------------------------------------------
    def set_buttons(self, can_start: bool, running: bool, can_resume: bool) -> None:
        self.start_button.setEnabled(can_start and not running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(can_resume and not running)

    # a run -----------------------------------------------------------------------------------------
    def show_idle(self, why: str) -> None:
        """No run on screen: say what Start needs (or that it is ready)."""
        self.state_label.setText(why)
        self.epoch_bar.setRange(0, 1)
        self.epoch_bar.setValue(0)
        self.batch_bar.setRange(0, 1)
        self.batch_bar.setValue(0)
        self.rate_label.setText("")
        self.error_label.setText("")
        self.error_label.setVisible(False)
        self.stderr_box.setVisible(False)
        self.results_box.setVisible(False)

    def begin_run(self) -> None:
        self.show_idle(STATE_WORDS[tr.STARTING])
        self.stderr_box.clear()
        self.curves.clear()

    def show_progress(self, progress: tr.RunProgress, epochs_changed: bool = True) -> None:
        """Draw the run as `progress` describes it (called after every poll with news)."""
        words = STATE_WORDS.get(progress.state, progress.state)
        if progress.stage and progress.stages and progress.state == tr.RUNNING:
            words += f" — stage {progress.stage} of {progress.stages}"
            description = progress.stage_descriptions.get(progress.stage)
            words += f": {description}" if description else ""
        if progress.state == tr.STOPPED and progress.can_resume:
            words += ": the last finished epoch is saved; Resume continues from it"
        done = max((r.epoch for r in progress.epochs), default=0)
        planned = max(progress.planned_epochs or 0, done, 1)
        if progress.state == tr.DONE:  # a finished run is a full bar, however early it stopped
            if progress.early_stops and done < planned:
                words += f" after {done} of {planned} epochs: validation stopped improving (early stopping)"
            planned = max(done, 1)
        self.state_label.setText(words)
        self.epoch_bar.setRange(0, planned)
        self.epoch_bar.setValue(min(done, planned))
        batches = progress.batches or 1
        self.batch_bar.setRange(0, batches)
        self.batch_bar.setValue(min(progress.batch or 0, batches) if not progress.finished else batches)
        rate = f"{progress.images_per_second:.0f} images/s" if progress.images_per_second is not None else ""
        left = progress.time_left()
        left_text = f"{format_seconds(left)} left" if left is not None and not progress.finished else ""
        self.rate_label.setText("   ".join(t for t in (rate, left_text) if t))
        if epochs_changed:
            name = progress.backbone or "this run"
            self.curves.show_runs([(name, progress.epochs, progress.stage_starts)])
        self._show_end(progress)

    def _show_end(self, progress: tr.RunProgress) -> None:
        error = progress.error or ""
        if progress.state == tr.FAILED and progress.error_kind:
            what = "refused the run" if progress.error_kind == "usage" else "failed"
            error = f"convnet-train {what} ({progress.error_kind}): {error}"
        if progress.finished and progress.exit_description and progress.state == tr.FAILED:
            error += f"\nThe process {progress.exit_description}."
        if progress.state == tr.FAILED and progress.can_resume:
            error += "\nThe last finished epoch was saved: Resume continues from it."
        self.error_label.setText(error.strip())
        self.error_label.setVisible(bool(error.strip()))
        died = progress.returncode is not None and progress.state == tr.FAILED and not progress.error_kind
        lines = progress.stderr_tail if died else []
        if died and lines:
            self.stderr_box.setPlainText("\n".join(lines))
        self.stderr_box.setVisible(bool(lines))
        if progress.state == tr.DONE:
            self.show_results(progress.run_dir, progress.best)

    def show_results(self, run_dir: str | None, best: dict | None) -> None:
        """The finished run's best accuracy and its report files (a fuller view comes later)."""
        self.results_box.setVisible(True)
        if best and best.get("val_accuracy") is not None:
            self.best_label.setText(
                f"Best validation accuracy: {percent(best['val_accuracy'])} (epoch {best.get('epoch')})"
            )
        else:
            self.best_label.setText("Best validation accuracy: unknown")
        warning = chance_warning(run_dir)
        if warning:  # not a result like any other: say so first (convnet-train prints it as a WARNING)
            self.best_label.setText(f"Warning: {warning}\n{self.best_label.text()}")
        self.report_list.clear()
        files = report_files(run_dir) if run_dir else {}
        for name, path in files.items():
            self.report_list.addItem(name)
            self.report_list.item(self.report_list.count() - 1).setToolTip(tooltip(str(path)))
        if not files:
            self.report_list.addItem("(no report files yet)")
        if run_dir and "metrics.json" in files:
            self.results_panel.show_run(run_dir)
            self.views.setCurrentWidget(self.results_panel)

    # the runs list ---------------------------------------------------------------------------------
    def show_runs(self, runs: list[RunSummary]) -> None:
        self.runs = list(runs)
        self.runs_tree.blockSignals(True)
        self.runs_tree.clear()
        for run in self.runs:
            date = run.date.strftime("%Y-%m-%d %H:%M") if run.date else "?"
            item = QTreeWidgetItem([run.name, date, run.backbone or "?", percent(run.best_val_accuracy), run.status])
            item.setData(0, Qt.ItemDataRole.ToolTipRole, tooltip(f"{run.path}\n{run.detail}".strip()))
            item.setData(0, Qt.ItemDataRole.UserRole, str(run.path))
            self.runs_tree.addTopLevelItem(item)
        self.runs_tree.blockSignals(False)
        for column in range(self.runs_tree.columnCount()):
            self.runs_tree.resizeColumnToContents(column)

    def select_runs(self, names: list[str]) -> None:
        """Select the runs with these folder names (tests and the tab use it)."""
        for index in range(self.runs_tree.topLevelItemCount()):
            item = self.runs_tree.topLevelItem(index)
            item.setSelected(item.text(0) in names)

    def _on_selection(self) -> None:
        items = self.runs_tree.selectedItems()[-2:]
        paths = [item.data(0, Qt.ItemDataRole.UserRole) for item in items]
        self.runs_selected.emit(paths)

    def show_history(self, paths: list[str]) -> None:
        """One or two finished (or interrupted) runs' curves, read from their history.csv, and
        the one run's results (or the two runs' metrics side by side) in the Results tab."""
        self.curves.show_runs([(Path(p).name, read_history(p), None) for p in paths[:2]])
        if len(paths) >= 2:
            self.results_panel.show_comparison(paths[0], paths[1])
        elif paths:
            self.results_panel.show_run(paths[0])
