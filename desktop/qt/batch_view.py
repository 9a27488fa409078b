"""Batch view: classify a whole folder in the background, browse, export and sort the results.

Heavy work (classifying, sorting, undoing) runs in QRunnables that never touch a widget;
they report through signals created on the GUI thread. Dialogs go through small
overridable methods (`choose_folder`, `ask_resume`, ... in batch_dialogs) so tests can
answer them. Sorting into class folders and its undo are the BatchSorting mixin (batch_sorting).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QStandardPaths, QThreadPool, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.core.batch import BatchProgress, BatchResult
from desktop.core.exporters import EXPORTERS, ExportContext, exporter
from desktop.core.model import LoadedModel
from desktop.core.results_io import BatchState
from desktop.core.settings import Settings
from desktop.qt.accuracy_panel import AccuracyPanel
from desktop.qt.batch_dialogs import BatchDialogs
from desktop.qt.batch_model import (
    ALL_CLASSES,
    COL_UNKNOWN,
    ERRORS_ONLY,
    MISCLASSIFIED,
    UNKNOWN_ONLY,
    BatchFilterProxy,
    BatchTableModel,
    BatchTask,
    JobTask,
    format_duration,
    make_results_table,
)
from desktop.qt.batch_sorting import BatchSorting
from desktop.qt.classify_view import ClassifyView
from desktop.qt.controller import InferenceController
from desktop.qt.drops import FileDrops
from desktop.qt.plain_text import PlainLabel
from desktop.qt.tab_view import MenuEntry, TabHost, TabView

DROP_HINT = "Drop a folder here, or press “Classify folder…”"


def default_state_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".convnet-studio") / "batch-state"


def _remember_undo_dest(settings: Settings, dest: Path | None) -> None:
    """Persist at once: Undo must still be offered after a crash or a restart."""
    settings.set("undo_sort_dest", str(dest) if dest is not None else "")
    settings.save()


class BatchView(BatchSorting, BatchDialogs, FileDrops, TabView, QWidget):
    """Folder classification tab; double-clicking a row asks for the single-image view."""

    tab_title = "&Batch"
    tab_shortcut = "Ctrl+2"
    menu_title = "&Batch"

    open_image_requested = Signal(Path)
    status_message = Signal(str)
    undo_available = Signal(bool)  # whether "Undo a sort…" has something to work on now
    undo_dest_changed = Signal(object)  # Path of the last sort with moves to undo, or None (to persist)

    def __init__(
        self, controller: InferenceController, parent: QWidget | None = None, *, state_dir: Path | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.state_dir = state_dir or default_state_dir()
        self.batch_size: int | None = None  # None: measured for the model (run_batch)
        self.folder: Path | None = None
        self.undo_dest: Path | None = None  # see set_undo_dest
        self._task: BatchTask | None = None
        self._job: JobTask | None = None
        self._last_rate = 0.0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self.model = BatchTableModel(self)
        self.proxy = BatchFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._build()
        self.setAcceptDrops(True)
        controller.model_changed.connect(self._on_model_changed)
        controller.unknown_threshold_changed.connect(self._on_threshold_changed)
        self._update_enabled()

    # the window ----------------------------------------------------------------------------------------
    def menu_entries(self) -> list[MenuEntry]:
        return [
            MenuEntry("Classify &folder…", "Ctrl+Shift+O", self.choose_and_start),
            MenuEntry("&Cancel batch", "Ctrl+.", self.cancel),
            *(MenuEntry(e.menu_text, e.shortcut, lambda kind=e.kind: self.choose_and_export(kind)) for e in EXPORTERS),
            MenuEntry("&Sort into folders…", "Ctrl+Shift+F", self.choose_and_sort),
            MenuEntry(
                "&Undo a sort…",
                "Ctrl+Shift+Z",
                self.choose_and_undo,
                enabled_signal=self.undo_available,
                name="undo_sort",
            ),
        ]

    def attach(self, host: TabHost) -> None:
        """Rows open on Classify; a folder dropped there is classified here; the undoable sort persists."""
        classify = host.view(ClassifyView)
        self.status_message.connect(lambda message: host.show_status(message, 8000))
        self.open_image_requested.connect(lambda path: (host.show_tab(classify), classify.show_image(path)))
        classify.folders_dropped.connect(lambda folders: (host.show_tab(self), self.start_folder(folders[0])))
        self.undo_dest_changed.connect(lambda dest: _remember_undo_dest(host.settings, dest))

    def restore_settings(self, settings: Settings) -> None:
        if not self.set_undo_dest(settings.get("undo_sort_dest") or None):
            settings.set("undo_sort_dest", "")  # its folder or log is gone: forget it

    # layout ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.classify_button = QPushButton("Classify folder…")
        self.classify_button.clicked.connect(self.choose_and_start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.rate_label = PlainLabel("")
        self.rate_label.setMinimumWidth(230)
        top = QHBoxLayout()
        top.addWidget(self.classify_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.progress, 1)
        top.addWidget(self.rate_label)

        self.class_combo = QComboBox()
        self.class_combo.setMinimumContentsLength(14)
        self.class_combo.currentTextChanged.connect(self.proxy.set_class_filter)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 100.0)
        self.threshold_spin.setDecimals(0)
        self.threshold_spin.setSingleStep(5.0)
        self.threshold_spin.setSuffix(" %")
        self.threshold_spin.setToolTip("Rows below this confidence are hidden, and sorted into _unsure/")
        self.threshold_spin.valueChanged.connect(lambda value: self.proxy.set_min_confidence(value / 100.0))
        self.export_buttons: dict[str, QPushButton] = {}  # one per format in desktop.core.exporters
        for format_ in EXPORTERS:
            button = self.export_buttons[format_.kind] = QPushButton(format_.button_text)
            button.clicked.connect(lambda _=False, kind=format_.kind: self.choose_and_export(kind))
        self.sort_button = QPushButton("Sort into folders…")
        self.sort_button.clicked.connect(self.choose_and_sort)
        self.undo_button = QPushButton("Undo a sort…")
        self.undo_button.clicked.connect(self.choose_and_undo)
        filters = QHBoxLayout()
        for widget in (PlainLabel("Class:"), self.class_combo, PlainLabel("Min. confidence:"), self.threshold_spin):
            filters.addWidget(widget)
        filters.addStretch(1)
        for widget in (*self.export_buttons.values(), self.sort_button, self.undo_button):
            filters.addWidget(widget)

        self.message = PlainLabel(DROP_HINT)
        self.message.setWordWrap(True)
        self.accuracy = AccuracyPanel()  # shown for a labelled folder (sub-folders named after classes)
        self.table = make_results_table(self.proxy)
        self.table.doubleClicked.connect(self._on_double_click)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.message)
        layout.addWidget(self.accuracy)
        layout.addWidget(self.table, 1)
        self._refresh_classes()

    # state ---------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def busy(self) -> bool:
        return self._task is not None or self._job is not None

    def results(self) -> list[BatchResult]:
        """All results, in arrival order."""
        return list(self.model.results)

    @property
    def threshold(self) -> float:
        return self.threshold_spin.value() / 100.0

    def _update_enabled(self) -> None:
        has_model = self.controller.classifier is not None
        has_ok = any(r.ok for r in self.model.results)
        self.classify_button.setEnabled(has_model and not self.busy)
        self.cancel_button.setEnabled(self.busy)
        for button in self.export_buttons.values():
            button.setEnabled(bool(self.model.results) and not self.running)
        self.sort_button.setEnabled(has_ok and not self.busy)
        can_undo = not self.busy and self.undo_dest is not None
        self.undo_button.setEnabled(can_undo)
        self.undo_available.emit(can_undo)
        if not has_model:
            self.message.setText("No model loaded: open a model first, then drop a folder here.")
        elif not self.model.results and not self.busy:
            self.message.setText(DROP_HINT)

    def _refresh_classes(self) -> None:
        current = self.class_combo.currentText() or ALL_CLASSES
        known = set(self.controller.model.info.labels) if self.controller.model else set()
        names = [ALL_CLASSES, *sorted(known | set(self.model.labels())), ERRORS_ONLY]
        names += [MISCLASSIFIED] if self.model.truth is not None else []
        scored = self._has_scores()
        names += [UNKNOWN_ONLY] if scored else []
        self.table.setColumnHidden(COL_UNKNOWN, not scored)
        if names == [self.class_combo.itemText(i) for i in range(self.class_combo.count())]:
            return
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItems(names)
        self.class_combo.setCurrentText(current if current in names else ALL_CLASSES)
        self.class_combo.blockSignals(False)
        self.proxy.set_class_filter(self.class_combo.currentText())

    def _has_scores(self) -> bool:
        """Whether the Unknown column and filter mean anything: the model or the rows have scores."""
        model = self.controller.model
        return bool(model is not None and model.has_unknown_score) or any(
            r.unknown_score is not None for r in self.model.results
        )

    def _on_threshold_changed(self, threshold: object) -> None:
        self.model.judge(threshold if isinstance(threshold, float) else None)
        self.proxy.invalidate()

    def _on_model_changed(self, model: LoadedModel) -> None:
        self.cancel()
        self._refresh_classes()
        self._update_enabled()

    # classify ----------------------------------------------------------------------------------------------
    def wanted(self, paths: list[Path]) -> list[Path]:  # drops (desktop/qt/drops.py): folders only
        return [path for path in paths if path.is_dir()]

    def take_drop(self, paths: list[Path]) -> None:
        self.start_folder(paths[0])

    def choose_and_start(self) -> None:
        folder = self.choose_folder()
        if folder is not None:
            self.start_folder(folder)

    def start_folder(self, folder: str | Path) -> bool:
        """Classify every image under `folder`; offers to resume earlier progress. False if not started."""
        folder = Path(folder)
        classifier = self.controller.classifier
        if classifier is None:
            self.show_message("No model", "Open a model before classifying a folder.", error=True)
            return False
        if self.busy:
            self.show_message("Busy", "Wait for the current batch to finish, or cancel it.", error=True)
            return False
        if not folder.is_dir():
            self.show_message("Not a folder", f"{folder} is not a folder.", error=True)
            return False
        state = BatchState.load(self.state_dir, folder, classifier.model.info.path)
        if state.finished:
            answer = self.ask_resume(folder, len(state.finished))
            if answer == "cancel":
                return False
            if answer == "restart":
                state.clear()
        self.folder = folder
        self.model.clear(folder)
        self.accuracy.clear()
        threshold = classifier.model.unknown_threshold  # resumed rows: judged as new ones are
        self.model.add_results(
            sorted((r.judged(threshold) for r in state.finished.values()), key=lambda r: str(r.path))
        )
        self._refresh_classes()
        self.progress.setRange(0, 0)
        self.rate_label.setText("Finding images…")
        self.message.setText(
            f"Classifying {folder}" + (f" (resuming: {len(state.finished)} done before)" if state.finished else "")
        )
        task = BatchTask(classifier, folder, state, self.batch_size)
        task.signals.labelled.connect(self._on_labelled)
        task.signals.results.connect(self._on_results)
        task.signals.progress.connect(self._on_progress)
        task.signals.failed.connect(lambda text: self.show_message("Batch failed", text, error=True))
        task.signals.finished.connect(self._on_finished)
        self._task = task
        self._update_enabled()
        self._pool.start(task)
        return True

    def cancel(self) -> None:
        """Stop after the current batch; results so far stay in the table and in the resume state."""
        if self._task is not None:
            self._task.cancel_event.set()
            self.rate_label.setText("Cancelling…")
        if self._job is not None:
            self._job.cancel_event.set()

    def _on_labelled(self, labels: object) -> None:
        """The folder's class sub-folders (or None): from now on accuracy is kept as rows arrive."""
        self.model.truth = labels
        self.accuracy.start(labels, self.model.results)  # resumed rows count too
        self._refresh_classes()

    def _on_results(self, results: list[BatchResult]) -> None:
        self.model.add_results(results)
        self.accuracy.add(results)
        if any(r.label is not None and self.class_combo.findText(r.label) < 0 for r in results):
            self._refresh_classes()

    def _on_progress(self, progress: BatchProgress) -> None:
        self._last_rate = progress.images_per_second
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.done)
        if progress.done:
            self.rate_label.setText(f"{progress.images_per_second:.1f} img/s · {format_duration(progress.eta_s)} left")
        else:
            self.rate_label.setText(f"{progress.total} images to classify")

    def _on_finished(self, cancelled: bool) -> None:
        self._task = None
        failed = sum(1 for r in self.model.results if not r.ok)
        verb = "Cancelled" if cancelled else "Finished"
        text = f"{verb}: {len(self.model.results)} images, {failed} could not be read."
        if cancelled:
            text += " Classify the folder again to resume."
        self.message.setText(text)  # the accuracy panel's own line is just below
        if self.accuracy.tally is not None:
            text += f" {self.accuracy.tally.summary()}."
        self.rate_label.setText(f"{verb.lower()} · {self._last_rate:.1f} img/s")
        if not cancelled:
            self.progress.setRange(0, max(1, self.progress.maximum()))
            self.progress.setValue(self.progress.maximum())
        self.status_message.emit(text)
        self._update_enabled()

    def _on_double_click(self, index: QModelIndex) -> None:
        row = self.proxy.mapToSource(index).row()
        if 0 <= row < len(self.model.results):
            self.open_image_requested.emit(self.model.results[row].path)

    # export (sorting and undo: batch_sorting.py) -------------------------------------------------------------------------------------
    def choose_and_export(self, kind: str) -> None:
        path = self.choose_export_path(kind)
        if path is not None:
            self.export(path, kind)

    def export(self, path: str | Path, kind: str = "csv") -> bool:
        """Write the rows shown (filtered, in view order) in the format `kind` (desktop.core.exporters), atomically.

        A labelled folder's exports add each file's true class (and, in JSON, the accuracy
        of the rows exported).
        """
        rows = self.proxy.visible_results()
        model = str(self.controller.model.info.path) if self.controller.model else None
        truth = self.accuracy.truth
        try:
            exporter(kind).write(path, rows, ExportContext(model, truth))
        except OSError as error:
            self.show_message("Export failed", f"Could not write {path}: {error.strerror or error}", error=True)
            return False
        self.status_message.emit(f"Exported {len(rows)} rows to {path}")
        return True

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Cancel and wait for background work (call before the window closes)."""
        self.cancel()
        self._pool.waitForDone(timeout_ms)
        self.model.shutdown()
