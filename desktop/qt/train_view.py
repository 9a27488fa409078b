"""The Train tab: pick a dataset, choose settings, and follow a `convnet-train` run live.

The app never imports TensorFlow; it runs convnet-train as a child (TrainingProcess,
desktop/core/training_run.py) and a 100 ms QTimer drains its JSON events into a
RunProgress, which the run panel draws, so the GUI thread never waits on the child.
Which convnet-train to run is found at the tab's first showing, in a worker (a probe may
take seconds); when there is none the tab says why and offers to install one, with the
install's log shown here.

A run belongs to the tab, not to the window's workers: closing the window asks first
(`confirm_close`) and `shutdown` then ends the child and everything it started, so no
training process outlives the app. Stop sends Ctrl+C (the last finished epoch is kept
and Resume offered); the window's close uses TrainingProcess.close() (SIGTERM, which
keeps the resume point too, then SIGKILL).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from convnet_common.atomic import write_text_atomic
from desktop.core import augmentation as aug
from desktop.core.run_history import RESUMABLE, list_runs, read_history
from desktop.core.run_progress import RunProgress
from desktop.core.settings import Settings
from desktop.core.train_settings import fresh_run_dir, list_backbones, resume_argv, save_settings, train_argv
from desktop.core.trainer_launcher import Launcher, TrainerMissing, find_launcher
from desktop.core.training_run import TrainingProcess
from desktop.qt.augment_view import AugmentView
from desktop.qt.classify_view import ClassifyView
from desktop.qt.controller import InferenceController
from desktop.qt.plain_text import PlainLabel, message_box
from desktop.qt.tab_view import MenuEntry, TabHost, TabView
from desktop.qt.train_dataset_panel import DatasetPanel
from desktop.qt.train_install import CallTask, InstallProcess
from desktop.qt.train_label_buttons import DatasetGrowButtons
from desktop.qt.train_run_panel import RunPanel
from desktop.qt.train_settings_panel import AUGMENT_TAB, SettingsPanel
from desktop.qt.workers import TaskRunner

POLL_MS = 100
AUGMENT_FILE = "augment.yaml"
CLOSE_QUESTION = "A training run is in progress. Stop it and close? It can be resumed later."


def runs_root(data_dir: Path) -> Path:
    """Where runs on `data_dir` go (<parent>/<dataset>-runs, as fresh_run_dir names them)."""
    return fresh_run_dir(data_dir, "run").parent


class TrainView(TabView, QWidget):
    """Dataset, settings and run panels, the trainer's status, and the one training child."""

    tab_title = "&Train"
    tab_shortcut = "Ctrl+5"
    menu_title = "&Train"

    def __init__(self, controller: InferenceController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.launcher: Launcher | None = None
        self.missing: TrainerMissing | None = None
        self.process: TrainingProcess | None = None
        self.progress: RunProgress | None = None
        self.install: InstallProcess | None = None
        self._checking = False
        self._checked_once = False
        self._saved_dataset = ""
        self._start_when_scanned = False  # Start was asked for during a scan
        self.runner = TaskRunner(2, self)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self._build()
        self._update_buttons()

    def _build(self) -> None:
        self.dataset_panel = DatasetPanel()
        self.dataset_panel.dataset_changed.connect(self._on_dataset_changed)
        self.dataset_panel.scan_finished.connect(self._on_scan_finished)
        self.grow_buttons = DatasetGrowButtons(self.dataset_panel, self.controller)  # Label / Capture
        self.settings_panel = SettingsPanel()
        settings_box = QGroupBox("Settings")
        QVBoxLayout(settings_box).addWidget(self.settings_panel)
        self.run_panel = RunPanel()
        self.run_panel.start_clicked.connect(self.start)
        self.run_panel.stop_clicked.connect(self.stop)
        self.run_panel.resume_clicked.connect(self.resume)
        self.run_panel.runs_selected.connect(self._on_runs_selected)
        results = self.run_panel.results_panel
        results.retrain_clicked.connect(self.start)  # the same settings, on the dataset as it is now
        results.open_model_requested.connect(self.open_in_classify)
        results.dataset_edited.connect(lambda _words: self.dataset_panel.rescan())

        self.trainer_label = PlainLabel("Looking for convnet-train…")
        self.trainer_label.setWordWrap(True)
        self.install_button = QPushButton("Install training support")
        self.install_button.clicked.connect(self.start_install)
        self.install_button.setVisible(False)
        self.install_bar = QProgressBar()
        self.install_bar.setRange(0, 0)  # indeterminate: pip gives no overall progress
        self.install_bar.setVisible(False)
        self.install_log = QPlainTextEdit()
        self.install_log.setReadOnly(True)
        self.install_log.setMaximumBlockCount(5000)
        self.install_log.setVisible(False)
        trainer = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(self.trainer_label, 1)
        row.addWidget(self.install_button)
        trainer.addLayout(row)
        trainer.addWidget(self.install_bar)
        trainer.addWidget(self.install_log)

        left = QSplitter(Qt.Orientation.Vertical)
        left.setChildrenCollapsible(False)
        left.addWidget(self.grow_buttons.wrap(self.dataset_panel))
        left.addWidget(settings_box)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(trainer)
        right_layout.addWidget(self.run_panel, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 2)
        QVBoxLayout(self).addWidget(splitter)

    # the window --------------------------------------------------------------------------------------
    def menu_entries(self) -> list[MenuEntry]:
        return [
            MenuEntry("Choose &dataset folder…", "Ctrl+Shift+D", self.dataset_panel.choose_folder),
            MenuEntry("&Start training", "Ctrl+Shift+T", self.start),
            MenuEntry("S&top training", "Ctrl+Shift+E", self.stop),
            MenuEntry("&Resume training", "Ctrl+Shift+G", self.resume),
        ]

    def attach(self, host: TabHost) -> None:
        """The Augment tab's current settings can be the run's augmentation."""
        self.host = host
        try:
            augment = host.view(AugmentView)
        except KeyError:
            self.settings_panel.set_augment_available(False)
            return
        self.settings_panel.augment_yaml = lambda: aug.to_yaml(augment.params())

    def restore_settings(self, settings: Settings) -> None:
        saved = settings.get("train_tab")
        if isinstance(saved, dict):
            self.settings_panel.apply_dict(saved.get("settings"))
            self._saved_dataset = saved.get("dataset") if isinstance(saved.get("dataset"), str) else ""

    def save_settings(self, settings: Settings) -> None:
        dataset = self.dataset_panel.dataset()
        settings.set(
            "train_tab",
            {"settings": self.settings_panel.to_dict(), "dataset": str(dataset) if dataset else self._saved_dataset},
        )

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        """First showing: look for the trainer, and reopen the last dataset (both in workers)."""
        super().showEvent(event)
        if not self._checked_once:
            self._checked_once = True
            self.check_trainer()
            if self._saved_dataset and self.dataset_panel.dataset() is None and Path(self._saved_dataset).is_dir():
                self.dataset_panel.set_dataset(Path(self._saved_dataset))

    def confirm_close(self) -> bool:
        """Closing during a run asks first; the run itself is ended by shutdown()."""
        if self.process is None or not self.process.running:
            return True
        return self.ask_stop_and_close()

    def ask_stop_and_close(self) -> bool:
        """The question before closing mid-run (tests replace it)."""
        box = message_box(
            QMessageBox.Icon.Question,
            "Training in progress",
            CLOSE_QUESTION,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """No child outlives the window: the run (SIGTERM keeps its resume point, then
        SIGKILL) and the install; then the workers."""
        self.timer.stop()
        self.grow_buttons.shutdown(timeout_ms)
        if self.process is not None:
            self.process.close()
            self.process = None
        if self.install is not None:
            self.install.stop(timeout_ms)
        self.dataset_panel.shutdown(timeout_ms)
        self.run_panel.results_panel.shutdown(timeout_ms)
        self.runner.shutdown(timeout_ms)

    # the trainer ---------------------------------------------------------------------------------------
    def check_trainer(self) -> None:
        """Find convnet-train in a worker; then list its networks (also in a worker)."""
        if self._checking:
            return
        self._checking = True
        self.trainer_label.setText("Looking for convnet-train…")
        task = CallTask(lambda: find_launcher())
        task.result_signals.succeeded.connect(self._on_launcher)
        task.result_signals.failed.connect(lambda message: self._on_launcher(TrainerMissing(message, None, None, None)))
        self.runner.start(task)

    def _on_launcher(self, found: Launcher | TrainerMissing) -> None:
        self._checking = False
        if isinstance(found, Launcher):
            self.launcher, self.missing = found, None
            self.run_panel.results_panel.set_launcher(found)
            self.trainer_label.setText(f"Training with {found.description}.")
            self.install_button.setVisible(False)
            task = CallTask(lambda: list_backbones(found))
            task.result_signals.succeeded.connect(self.settings_panel.set_backbones)
            task.result_signals.failed.connect(lambda message: self.settings_panel.set_backbones([], message))
            self.runner.start(task)
        else:
            self.launcher, self.missing = None, found
            self.trainer_label.setText(found.explanation)
            self.install_button.setVisible(found.install_argv is not None)
            self.install_button.setEnabled(self.install is None)
        self._update_buttons()

    def start_install(self) -> None:
        """Run the install command as a child, its log in the tab; check again when it ends."""
        if self.missing is None or self.missing.install_argv is None or self.install is not None:
            return
        self.install = InstallProcess(self.missing.install_argv, self.missing.install_cwd, self)
        self.install.output.connect(self._append_install_log)
        self.install.finished.connect(self._on_install_finished)
        self.install_log.clear()
        for widget in (self.install_log, self.install_bar):
            widget.setVisible(True)
        self.install_button.setEnabled(False)
        self.install.start()

    def _append_install_log(self, text: str) -> None:
        self.install_log.moveCursor(self.install_log.textCursor().MoveOperation.End)
        self.install_log.insertPlainText(text)
        self.install_log.ensureCursorVisible()

    def _on_install_finished(self, code: int) -> None:
        self.install_bar.setVisible(False)
        self._append_install_log(f"\n(the install ended with exit status {code})\n")
        self.install = None
        self.check_trainer()

    # the dataset ------------------------------------------------------------------------------------
    def _on_dataset_changed(self, path: Path | None) -> None:
        self._start_when_scanned = False  # a Start asked for on another folder
        self.run_panel.results_panel.set_dataset(path)
        self.refresh_runs()
        self._update_buttons()

    def open_in_classify(self, path: str) -> None:
        """An exported model of a run, loaded in the Classify tab (the window's model)."""
        self.host.open_model(path)
        self.host.show_tab(self.host.view(ClassifyView))

    def refresh_runs(self) -> None:
        data = self.dataset_panel.dataset()
        self.run_panel.show_runs(list_runs(runs_root(data), data) if data is not None else [])

    def _on_runs_selected(self, paths: list[str]) -> None:
        if paths and (self.process is None):
            self.run_panel.show_history(paths)
        self._update_buttons()

    def _resume_dir(self) -> str | None:
        """The run Resume continues: the one just stopped, else a resumable one selected."""
        if self.progress is not None and self.progress.finished and self.progress.can_resume:
            return self.progress.run_dir
        selected = {str(p) for p in self._selected_paths()}
        for run in self.run_panel.runs:
            if str(run.path) in selected and run.status == RESUMABLE:
                return str(run.path)
        return None

    def _selected_paths(self) -> list[str]:
        return [item.data(0, Qt.ItemDataRole.UserRole) for item in self.run_panel.runs_tree.selectedItems()]

    def _scanning(self) -> bool:
        return self.dataset_panel.current_scan() is None

    def _on_scan_finished(self, _scan) -> None:
        self._update_buttons()
        if self._start_when_scanned:
            self._start_when_scanned = False
            self.start()

    def start_blocker(self) -> str:
        """Why Start is not possible now ("" when it is)."""
        if self.launcher is None:
            return "Training support is missing (see above)." if self.missing else "Looking for convnet-train…"
        if self.dataset_panel.dataset() is None:
            return "Choose a dataset folder to train on."
        scan = self.dataset_panel.current_scan()
        if scan is None:
            return "Checking the dataset…"
        if not scan.trainable:
            return "The dataset cannot be trained on yet: see its warnings."
        return ""

    def _update_buttons(self) -> None:
        running = self.process is not None
        self.run_panel.set_buttons(not self.start_blocker(), running, self._resume_dir() is not None)
        if not running and (self.progress is None or not self.progress.finished):
            self.run_panel.show_idle(self.start_blocker() or "Ready to train.")

    # a run ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        """A new run on the dataset with the current settings, in a fresh run folder.

        Asked for while the dataset is being scanned again (Retrain right after fixing an
        image rescans it), the run starts when the scan ends; any other reason not to
        start is said, never a silent no-op.
        """
        if self.process is not None:
            return
        blocker = self.start_blocker()
        if blocker:
            self._start_when_scanned = self.dataset_panel.dataset() is not None and self._scanning()
            self.run_panel.show_idle(blocker + (" The run starts when it is done." if self._start_when_scanned else ""))
            return
        self._start_when_scanned = False
        data = self.dataset_panel.dataset()
        run_dir = fresh_run_dir(data, self.settings_panel.backbone() or "run")
        augment_file = None
        try:
            if self.settings_panel.augment_choice() == AUGMENT_TAB and self.settings_panel.augment_yaml is not None:
                run_dir.mkdir(parents=True, exist_ok=True)
                augment_file = str(run_dir / AUGMENT_FILE)
                write_text_atomic(Path(augment_file), self.settings_panel.augment_yaml())
            settings = self.settings_panel.train_settings(str(data), str(run_dir), augment_file)
            save_settings(settings)
            argv = train_argv(self.launcher, settings, pretrained=self.settings_panel.pretrained())
        except (OSError, ValueError) as error:
            self.run_panel.show_idle(f"Could not prepare the run folder {run_dir}: {error}")
            return
        self._launch(argv, str(run_dir), [])

    def resume(self) -> None:
        run_dir = self._resume_dir()
        if self.process is not None or self.launcher is None or run_dir is None:
            return
        self._launch(resume_argv(self.launcher, run_dir), run_dir, read_history(run_dir))

    def stop(self) -> None:
        if self.process is not None and self.progress is not None:
            self.process.request_stop()
            self.progress.mark_stopping()
            self.run_panel.show_progress(self.progress, epochs_changed=False)
            self._update_buttons()

    def _launch(self, argv: list[str], run_dir: str, earlier: list) -> None:
        self.progress = RunProgress(run_dir)
        self.progress.epochs = list(earlier)  # a resumed run's curves go on from the saved epochs
        self.run_panel.begin_run()
        try:
            self.process = TrainingProcess(argv)
        except OSError as error:
            self.progress = None
            self.run_panel.show_idle(f"Could not start convnet-train: {error}")
            return
        self.run_panel.show_progress(self.progress)
        self._update_buttons()
        self.timer.start()

    def poll(self) -> None:
        """Drain the child's events (never blocks); when it has exited, wrap up."""
        if self.process is None or self.progress is None:
            self.timer.stop()
            return
        events = self.process.poll_events()
        if not events:
            return
        epochs_changed = False
        for event in events:
            self.progress.apply(event)
            epochs_changed = epochs_changed or event.get("event") in ("epoch", "stage", "start")
        exited = any(event.get("event") == "process_exit" for event in events)
        if exited:
            self.timer.stop()
            self.process.close()
            self.process = None
        self.run_panel.show_progress(self.progress, epochs_changed=epochs_changed or exited)
        if exited:
            self.refresh_runs()
            self._update_buttons()
