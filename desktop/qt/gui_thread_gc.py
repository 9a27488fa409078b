"""Python's cyclic garbage collector runs on the GUI thread only.

CPython collects cycles in whichever thread happens to allocate past the collector's
threshold. When that is a worker thread (a Batch run, a camera or map worker) and the
garbage holds Qt objects (a closed window's or dialog's wrappers caught in a reference
cycle), PySide destroys them there: the QObject destructor takes Qt's internal locks and
then waits for the GIL, while the GUI thread holds the GIL and waits for the same locks.
Both wait forever. It happened here: the test suite hung in a Batch run, with a
QThreadPool worker in `gc_collect_main -> QObject::~QObject -> GilState::acquire` and the
GUI thread in `QObject::~QObject -> QBasicMutex::lockInternal` (py-spy dump --native).

The usual cure for Qt applications in Python: turn automatic collection off and collect
from a timer on the GUI thread, at the thresholds Python itself would have used.
Reference counting still frees everything that is not in a cycle at once, in any thread.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 200


class GuiThreadGarbageCollector(QObject):
    """While it runs, cycles are collected only here, on the thread that created it (the
    GUI thread). `stop()` collects once more and gives collection back to Python."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.collections = 0
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations Python would have collected by now (its own rule)."""
        first, second, third = gc.get_count()
        if first <= self.threshold[0]:
            return
        generation = 0
        if second > self.threshold[1]:
            generation = 2 if third > self.threshold[2] else 1
        gc.collect(generation)
        self.collections += 1

    def stop(self) -> None:
        self.timer.stop()
        gc.collect()
        gc.enable()


def install(app: QObject) -> GuiThreadGarbageCollector:
    """The collector for the application's life (it is the application's child)."""
    return GuiThreadGarbageCollector(app)
