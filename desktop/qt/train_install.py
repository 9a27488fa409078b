"""Finding the trainer, listing its networks, and installing training support: off the GUI thread.

`find_launcher` may start a probe interpreter (up to 15 s) and `convnet-train models` a
second one, so both run as a `CallTask` on the tab's TaskRunner. The install
(scripts/ensure-venv.sh: pip downloading ~2 GB) is a QProcess, so its output arrives as
signals in the GUI thread and is appended to the log as it comes. It runs in its own
session, so that `stop()` (the window closing) ends pip too, not only bash.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal

from desktop.qt.workers import BackgroundTask


class CallSignals(QObject):
    succeeded = Signal(object)
    failed = Signal(str)


class CallTask(BackgroundTask):
    """Run `function()` in the pool; its value (or the error, as text) comes back by signal."""

    def __init__(self, function: Callable[[], object]) -> None:
        super().__init__()
        self.function = function
        self.result_signals = CallSignals()  # created here, on the GUI thread

    def work(self) -> None:
        try:
            value = self.function()
        except Exception as error:  # noqa: BLE001 - reported in the tab, never a crash
            if not self.cancelled:
                self.result_signals.failed.emit(str(error) or type(error).__name__)
            return
        if not self.cancelled:
            self.result_signals.succeeded.emit(value)


class InstallProcess(QObject):
    """The install command as a child with merged output; `output(str)` per chunk of text,
    `finished(int)` with the exit status (-1: could not start or crashed)."""

    output = Signal(str)
    finished = Signal(int)

    def __init__(self, argv: tuple[str, ...], cwd: Path | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.argv = argv
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        if cwd is not None:
            self.process.setWorkingDirectory(str(cwd))
        if sys.platform != "win32":
            params = QProcess.UnixProcessParameters()
            params.flags = QProcess.UnixProcessFlag.CreateNewSession
            self.process.setUnixProcessParameters(params)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self._done = False

    def start(self) -> None:
        self.output.emit("$ " + " ".join(self.argv) + "\n")
        self.process.start(self.argv[0], list(self.argv[1:]))

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def _read(self) -> None:
        data = bytes(self.process.readAllStandardOutput().data())
        if data:
            self.output.emit(data.decode("utf-8", "replace"))

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read()
        self._finish(code if status == QProcess.ExitStatus.NormalExit else -1)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.output.emit(f"could not start {self.argv[0]}: {self.process.errorString()}\n")
            self._finish(-1)

    def _finish(self, code: int) -> None:
        if not self._done:
            self._done = True
            self.finished.emit(code)

    def stop(self, timeout_ms: int = 5000) -> None:
        """End the install and everything it started (its whole session), and wait for it."""
        if not self.running:
            return
        pid = self.process.processId()
        if sys.platform != "win32" and pid > 0:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGTERM)
        else:
            self.process.terminate()
        if not self.process.waitForFinished(timeout_ms):
            if sys.platform != "win32" and pid > 0:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            self.process.kill()
            self.process.waitForFinished(timeout_ms)
