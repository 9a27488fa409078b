"""Garbage cycles are collected on the GUI thread, never on a worker: a worker that
destroys Qt objects can deadlock with the GUI thread (desktop.qt.gui_thread_gc)."""

from __future__ import annotations

import gc
import threading

from desktop.qt.gui_thread_gc import GuiThreadGarbageCollector


class _InCycle:
    """Records the thread that finally frees it."""

    freed_on: list[str] = []

    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it

    def __del__(self) -> None:
        _InCycle.freed_on.append(threading.current_thread().name)


def test_a_worker_allocating_past_the_threshold_does_not_collect(qtbot, _collect_garbage_on_the_gui_thread) -> None:
    collector = _collect_garbage_on_the_gui_thread
    assert isinstance(collector, GuiThreadGarbageCollector) and not gc.isenabled()
    _InCycle.freed_on.clear()
    _InCycle()  # garbage now, freed only by a collection

    def allocate() -> None:  # far past generation 0's threshold: Python would collect here
        junk = [[] for _ in range(gc.get_threshold()[0] * 20)]
        del junk
        for _ in range(gc.get_threshold()[0] * 5):
            cycle: list = []
            cycle.append(cycle)

    worker = threading.Thread(target=allocate, name="worker")
    worker.start()
    worker.join()
    assert _InCycle.freed_on == []  # the worker collected nothing
    qtbot.waitUntil(lambda: _InCycle.freed_on != [], timeout=5000)
    assert _InCycle.freed_on == [threading.main_thread().name]
    assert collector.collections >= 1


def test_stop_gives_collection_back_to_python(qapp) -> None:
    collector = GuiThreadGarbageCollector()
    assert not gc.isenabled()
    collector.stop()
    assert gc.isenabled() and not collector.timer.isActive()
    gc.disable()  # the autouse fixture's collector is still running for this test
