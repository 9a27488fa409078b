"""Export a finished run to one .onnx file from the Train tab, then open it in Classify.

The export is `convnet-train export RUN_DIR --out FILE --precision P` run as a child
(desktop.core.training_run.TrainingProcess, polled by a timer: the GUI thread never
waits; the app never imports TensorFlow or onnx). The command prints its steps on stderr,
whose last line is shown as it goes. When it exits 0, the result is read from the file
itself, not from that text: the `precision` and, for fp16/int8, the `precision_check`
metadata training stores in the model (top-1 agreement with the fp32 model), read in a
worker by desktop.core.run_results.read_export_check.

The default file is inside the run folder (desktop.core.run_results.default_export_path:
RUN_DIR/model.onnx, model-fp16.onnx, model-int8.onnx), where the results gallery looks
for a model to draw activation maps with.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout, QWidget

from desktop.core.run_export import PRECISIONS, ExportCheck, default_export_path, find_export, read_export_check
from desktop.core.run_progress import describe_exit
from desktop.core.train_settings import export_argv
from desktop.core.trainer_launcher import Launcher
from desktop.core.training_run import PROCESS_EXIT, TrainingProcess
from desktop.qt.plain_text import PlainLabel
from desktop.qt.train_install import CallTask
from desktop.qt.workers import TaskRunner

POLL_MS = 150


class ExportBox(QWidget):
    """Precision, "Export model…", its progress and agreement, and "Open in Classify".

    `exported(str)` when a new file is ready; `open_requested(str)` for the Classify tab."""

    exported = Signal(str)
    open_requested = Signal(str)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.launcher: Launcher | None = None
        self.run_dir: Path | None = None
        self.model_path: Path | None = None
        self.process: TrainingProcess | None = None
        self._out: Path | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.precision = QComboBox()
        for name in PRECISIONS:
            self.precision.addItem(name, name)
        self.precision.setToolTip("fp16 halves the file; int8 quarters it (both are checked against fp32)")
        self.export_button = QPushButton("Export model…")
        self.export_button.clicked.connect(self.start_export)
        self.open_button = QPushButton("Open in Classify")
        self.open_button.clicked.connect(self._open)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.bar.setVisible(False)
        self.status = PlainLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(PlainLabel("Precision:"))
        row.addWidget(self.precision)
        row.addWidget(self.export_button)
        row.addWidget(self.open_button)
        row.addWidget(self.bar, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self._update()

    def set_run(self, run_dir: str | Path | None, launcher: Launcher | None) -> None:
        """The run to export (None: none); an export already in its folder can be opened at once."""
        self.launcher = launcher
        if self.process is None:
            self.run_dir = Path(run_dir) if run_dir else None
            self.model_path = find_export(self.run_dir) if self.run_dir else None
            self.status.setText(f"Exported model: {self.model_path}" if self.model_path else "")
        self._update()

    def set_launcher(self, launcher: Launcher | None) -> None:
        self.launcher = launcher
        self._update()

    def _update(self) -> None:
        idle = self.process is None
        self.export_button.setEnabled(idle and self.run_dir is not None and self.launcher is not None)
        self.export_button.setToolTip(
            "Export this run as one .onnx file" if self.launcher is not None else "Needs convnet-train (see above)"
        )
        self.precision.setEnabled(idle)
        self.open_button.setEnabled(idle and self.model_path is not None)
        self.bar.setVisible(not idle)

    def choose_path(self, default: Path) -> str | None:
        """The file to export to (a save dialog; tests replace it)."""
        path, _ = QFileDialog.getSaveFileName(self, "Export model", str(default), "ONNX model (*.onnx)")
        return path or None

    def start_export(self) -> None:
        if self.process is not None or self.run_dir is None or self.launcher is None:
            return
        precision = self.precision.currentData()
        chosen = self.choose_path(default_export_path(self.run_dir, precision))
        if not chosen:
            return
        out = Path(chosen) if Path(chosen).suffix.lower() == ".onnx" else Path(chosen + ".onnx")
        try:
            self.process = TrainingProcess(export_argv(self.launcher, self.run_dir, out, precision))
        except (OSError, ValueError) as error:
            self.status.setText(f"Could not start convnet-train export: {error}")
            return
        self._out = out
        self.status.setText(
            f"Exporting {self.run_dir.name} as {precision} to {out}… (loading TensorFlow takes a while)"
        )
        self._update()
        self.timer.start()

    def poll(self) -> None:
        """The child's last stderr line while it runs; its outcome once it has exited."""
        if self.process is None:
            self.timer.stop()
            return
        events = self.process.poll_events()
        tail = self.process.stderr_tail
        exit_event = next((e for e in events if e.get("event") == PROCESS_EXIT), None)
        if exit_event is None:
            if tail:
                self.status.setText(f"Exporting… {tail[-1]}")
            return
        self.timer.stop()
        self.process.close()
        self.process = None
        code, out = exit_event.get("returncode"), self._out
        if code == 0 and out is not None and out.is_file():
            self.model_path = out
            self.status.setText(f"Exported {out}. Checking what the file records…")
            task = CallTask(lambda: read_export_check(out))
            task.result_signals.succeeded.connect(lambda check, p=out: self._on_checked(p, check))
            task.result_signals.failed.connect(lambda message, p=out: self._on_checked(p, None, message))
            self.runner.start(task)
            self.exported.emit(str(out))
        else:
            lines = [line for line in tail if line.strip()][-4:]
            self.status.setText(
                f"The export failed: convnet-train {describe_exit(code)}." + ("\n" + "\n".join(lines) if lines else "")
            )
        self._update()

    def _on_checked(self, path: Path, check: ExportCheck | None, message: str = "") -> None:
        if path != self.model_path:
            return
        what = check.describe() if check is not None else f"its metadata could not be read ({message})"
        self.status.setText(f"Exported {path.name} — {what}. “Open in Classify” loads it there.")

    def _open(self) -> None:
        if self.model_path is not None:
            self.open_requested.emit(str(self.model_path))

    def shutdown(self) -> None:
        """No export outlives the window."""
        self.timer.stop()
        if self.process is not None:
            self.process.close(grace=3.0)
            self.process = None
