"""Label new images with the current model, least certain first, and add them to the dataset.

A thin view over desktop.core.labelling: choose a folder of unlabelled images; it is
classified in a worker (desktop.qt.train_label_worker) with a progress bar and Cancel;
the grid shows each image's thumbnail, the model's suggestion and its confidence, least
certain first. Keys decide for the selected image and move on to the next undecided one:
1-9 the n-th class, Enter or Space the suggestion, Backspace or 0 skip; the class picker
assigns any class (there may be more than nine). "Add N images to the dataset" copies the
decided ones with DatasetEdits (never overwriting, undoable) and emits `committed`, on
which the Train tab rescans its dataset panel.

The classes offered are the dataset's folders; model classes without one are named, and
can be added (desktop.core.labelling explains the rule). File names, class names and
reasons come from the user's disk or a model: all text is plain (desktop.qt.plain_text).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QCloseEvent, QColor, QIcon, QStandardItem
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.core.labelling import ACCEPTED, CORRECTED, SKIPPED, LabellingError, LabellingSession, dataset_classes
from desktop.core.model import LoadedModel
from desktop.qt.imageconv import rgb_to_qpixmap
from desktop.qt.layout import hbox
from desktop.qt.plain_text import PlainLabel, tooltip
from desktop.qt.train_label_worker import ACCEPT, CLASS, SKIP, LabelGrid, LabelResult, LabelTask
from desktop.qt.workers import TaskRunner

KEYS_HINT = "Keys: 1-9 a class, Enter/Space accept the suggestion, Backspace/0 skip."
COLOURS = {ACCEPTED: QColor(210, 240, 210), CORRECTED: QColor(210, 225, 250), SKIPPED: QColor(225, 225, 225)}


class LabelDialog(QDialog):
    """Classify a folder, decide per image, commit into `dataset` (see the module docstring)."""

    committed = Signal(object)  # CommitReport

    def __init__(
        self, dataset: Path, model: LoadedModel | None, provider: str = "auto", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Label new images")
        self.resize(900, 640)
        self.dataset = Path(dataset)
        self.model = model
        self.model_path: Path | None = None
        self.provider = provider
        self.folder: Path | None = None
        self.session: LabellingSession | None = None
        self.task: LabelTask | None = None
        self.runner = TaskRunner(1, self)
        self._build()
        self._show_model()
        self._update()

    def _build(self) -> None:
        self.folder_button = QPushButton("Choose folder…")
        self.folder_label = PlainLabel("Choose a folder of images to label.")
        self.model_button = QPushButton("Other model file…")
        self.model_button.setToolTip("Label with another model, e.g. a run's exported .onnx")
        self.model_label = PlainLabel("")
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.status_label = PlainLabel("")
        self.status_label.setWordWrap(True)
        self.grid = LabelGrid()
        self.classes_label = PlainLabel("")
        self.classes_label.setWordWrap(True)
        self.class_combo = QComboBox()
        self.assign_button = QPushButton("Assign class")
        self.new_class_edit = QLineEdit()
        self.new_class_edit.setPlaceholderText("new class name")
        self.add_class_button = QPushButton("Add class")
        self.add_missing_button = QPushButton("Add the model's missing classes")
        self.unreadable_list = QListWidget()
        self.unreadable_list.setMaximumHeight(90)
        self.commit_button = QPushButton("Add 0 images to the dataset")
        self.close_button = QPushButton("Close")
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)  # Enter belongs to the grid, never to a button
        layout = QVBoxLayout(self)
        layout.addLayout(hbox(self.folder_button, (self.folder_label, 1)))
        layout.addLayout(hbox(self.model_button, (self.model_label, 1)))
        layout.addLayout(hbox((self.progress, 1), self.cancel_button))
        layout.addWidget(self.status_label)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.classes_label)
        layout.addLayout(hbox(self.class_combo, self.assign_button, 16, self.new_class_edit, self.add_class_button, 16))
        layout.addWidget(self.add_missing_button)
        layout.addWidget(self.unreadable_list)
        layout.addLayout(hbox((PlainLabel(KEYS_HINT), 1), self.commit_button, self.close_button))
        self.progress.hide()

        self.folder_button.clicked.connect(self.choose_folder)
        self.model_button.clicked.connect(self.choose_model_file)
        self.cancel_button.clicked.connect(self.cancel)
        self.grid.decided.connect(self._on_key)
        self.assign_button.clicked.connect(lambda: self.assign(self.class_combo.currentText()))
        self.add_class_button.clicked.connect(lambda: self.add_class(self.new_class_edit.text()))
        self.new_class_edit.returnPressed.connect(lambda: self.add_class(self.new_class_edit.text()))
        self.add_missing_button.clicked.connect(self.add_missing_classes)
        self.commit_button.clicked.connect(self.commit)
        self.close_button.clicked.connect(self.close)

    # choosing what to classify ------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Images to label", str(self.folder or self.dataset.parent))
        if folder:
            self.set_folder(Path(folder))

    def choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Label with model", str(self.dataset.parent), "ONNX (*.onnx)")
        if path:
            self.set_model_path(Path(path))

    def set_model_path(self, path: Path) -> None:
        """Label with this model file (loaded in the worker) instead of the app's model."""
        self.model_path = path
        self._show_model()
        if self.folder is not None:
            self.classify()

    def set_folder(self, folder: Path) -> None:
        """Classify every image under `folder` (a folder inside the dataset is refused)."""
        folder = Path(folder)
        if folder.resolve() == self.dataset.resolve() or self.dataset.resolve() in folder.resolve().parents:
            self._status("That folder is part of the dataset: choose a folder of new images.", error=True)
            return
        self.folder = folder
        self.folder_label.setText(str(folder))
        self.classify()

    def classify(self) -> None:
        """Start (or restart) classifying the folder in the worker; earlier decisions are dropped."""
        if self.folder is None:
            return
        self.cancel()
        self.session = None
        self.grid.model_.clear()
        self.unreadable_list.clear()
        task = LabelTask(self.folder, self.model, self.model_path, self.provider)
        task.signals.progress.connect(self._on_progress)
        task.signals.classified.connect(lambda result: self._on_classified(task, result))
        task.signals.failed.connect(lambda message: self._on_failed(task, message))
        self.task = task
        self.progress.setRange(0, 0)
        self.progress.show()
        self._status("Classifying…")
        self.runner.start(task)
        self._update()

    def cancel(self) -> None:
        """Stop classifying; what was classified so far is still shown."""
        if self.task is not None:
            self.task.cancel()

    # worker answers --------------------------------------------------------------------------
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self._status(f"Classifying: {done} of {total}")

    def _on_failed(self, task: LabelTask, message: str) -> None:
        if task is self.task:
            self.task = None
            self.progress.hide()
            self._status(f"Could not classify: {message}", error=True)
            self._update()

    def _on_classified(self, task: LabelTask, result: LabelResult) -> None:
        if task is not self.task:
            return  # a run replaced by a newer one
        self.task = None
        self.progress.hide()
        labels = result.model.info.labels
        self.session = LabellingSession(result.items, dataset_classes(self.dataset), labels, result.unreadable)
        for suggestion in result.items:
            item = QStandardItem()
            item.setEditable(False)
            item.setToolTip(tooltip(str(suggestion.path)))
            if suggestion.path in result.thumbs:
                item.setIcon(QIcon(rgb_to_qpixmap(result.thumbs[suggestion.path])))
            self.grid.model_.appendRow(item)
        for row in range(len(result.items)):
            self._refresh_item(row)
        for path, reason in result.unreadable:
            self.unreadable_list.addItem(f"{path.name}: {reason}")
        done = f"{len(result.items)} image(s), least certain first"
        if result.unreadable:
            done += f"; {len(result.unreadable)} could not be read (listed below)"
        if result.cancelled:
            done = "Cancelled: " + done
        self._status(done + ".")
        self._refresh_classes()
        if result.items:
            self.grid.set_current_row(0)
            self.grid.setFocus()
        self._update()

    # decisions -----------------------------------------------------------------------------------
    def _on_key(self, kind: str, number: int) -> None:
        if kind == CLASS:
            if self.session is None or number > len(self.session.classes):
                self._status(f"There is no class {number}.", error=True)
                return
            self.assign(self.session.classes[number - 1])
        elif kind == ACCEPT:
            self._decide(lambda session, row: session.accept(row))
        elif kind == SKIP:
            self._decide(lambda session, row: session.skip(row))

    def assign(self, label: str) -> None:
        """Put the selected image in class `label`."""
        self._decide(lambda session, row: session.correct(row, label))

    def _decide(self, action) -> None:
        row = self.grid.current_row()
        if self.session is None or row is None or row in self.session.committed:
            return
        try:
            action(self.session, row)
        except LabellingError as error:
            self._status(str(error), error=True)
            return
        self._refresh_item(row)
        following = self.session.next_undecided(row)
        if following is not None:
            self.grid.set_current_row(following)
        self._status("All images decided." if following is None else "")
        self._update()

    def add_class(self, name: str) -> None:
        """Offer a new class (its folder is made when images are added)."""
        if self.session is None:
            return
        try:
            self.session.add_class(name.strip())
        except LabellingError as error:
            self._status(str(error), error=True)
            return
        self.new_class_edit.clear()
        self._refresh_classes()

    def add_missing_classes(self) -> None:
        if self.session is None:
            return
        refused = []
        for label in self.session.missing_model_classes():
            try:
                self.session.add_class(label)
            except LabellingError as error:
                refused.append(f"{label}: {error}")
        self._refresh_classes()
        if refused:
            self._status("Not added: " + "; ".join(refused), error=True)

    def commit(self) -> None:
        """Copy the decided images into their class folders; say what was done."""
        if self.session is None or not self.session.pending_count():
            return
        report = self.session.commit(self.dataset)
        for row in range(len(self.session.items)):
            self._refresh_item(row)
        text = report.summary()
        if report.failed:
            text += " " + "; ".join(f"{path.name}: {why}" for path, why in report.failed[:5])
        self._status(text, error=bool(report.failed))
        self._update()
        self.committed.emit(report)

    # showing -------------------------------------------------------------------------------------
    def _refresh_item(self, row: int) -> None:
        if self.session is None:
            return
        suggestion, decision = self.session.items[row], self.session.decision(row)
        if row in self.session.committed:
            state = f"added to {decision.label}"
        elif decision is None:
            state = ""
        elif decision.kind == SKIPPED:
            state = "skipped"
        else:
            state = f"✓ {decision.label}" if decision.kind == ACCEPTED else f"→ {decision.label}"
        item = self.grid.item(row)
        item.setText(f"{suggestion.label} {suggestion.confidence:.0%}\n{state}".rstrip())
        colour = COLOURS.get(decision.kind) if decision is not None else None
        item.setBackground(colour if colour is not None else QColor(0, 0, 0, 0))

    def _refresh_classes(self) -> None:
        session = self.session
        classes = session.classes if session is not None else []
        current = self.class_combo.currentText()
        self.class_combo.clear()
        self.class_combo.addItems(classes)
        if current in classes:
            self.class_combo.setCurrentText(current)
        keys = "  ".join(f"{n}: {name}" for n, name in enumerate(classes[:9], start=1))
        text = f"Classes: {keys}" if classes else "The dataset has no class folders yet: add classes."
        missing = session.missing_model_classes() if session is not None else []
        if missing:
            text += f"\nThe model's classes with no folder in the dataset: {', '.join(missing)}."
        self.classes_label.setText(text)
        self.add_missing_button.setVisible(bool(missing))
        self._update()

    def _show_model(self) -> None:
        if self.model_path is not None:
            self.model_label.setText(f"Model: {self.model_path}")
        elif self.model is not None:
            self.model_label.setText(f"Model: {self.model.info.name} (the app's current model)")
        else:
            self.model_label.setText("No model loaded: choose a model file (e.g. a run's exported .onnx).")

    def _status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #b3261e;" if error else "")

    def _update(self) -> None:
        busy = self.task is not None
        has_session = self.session is not None
        pending = self.session.pending_count() if has_session else 0
        self.commit_button.setText(f"Add {pending} image{'s' if pending != 1 else ''} to the dataset")
        self.commit_button.setEnabled(pending > 0 and not busy)
        self.cancel_button.setEnabled(busy)
        for widget in (self.class_combo, self.assign_button, self.new_class_edit, self.add_class_button):
            widget.setEnabled(has_session and not busy)
        self.unreadable_list.setVisible(self.unreadable_list.count() > 0)

    # lifecycle -----------------------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 5000) -> None:
        self.cancel()
        self.runner.shutdown(timeout_ms)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    def reject(self) -> None:
        self.shutdown()
        super().reject()
