"""Qt test setup: headless Qt, OpenCV's Qt variables scrubbed, and the `window` fixture."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from pathlib import Path

import cv2  # noqa: F401 - imported first so its Qt variables exist to be scrubbed
import pytest

from desktop.qt.environment import scrub_opencv_qt_env

scrub_opencv_qt_env()

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # the Qt test modules import helpers from each other
    sys.path.insert(0, HERE)


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_gui_thread(qapp):
    """As the app does (desktop.qt.gui_thread_gc): without it a worker thread can collect
    an earlier test's Qt objects and deadlock with the GUI thread."""
    from desktop.qt.gui_thread_gc import GuiThreadGarbageCollector

    gc.collect()  # what earlier tests left, here on the GUI thread
    collector = GuiThreadGarbageCollector()
    yield collector
    collector.stop()


@pytest.fixture
def window(qtbot):
    """The real main window on the CPU provider, with error dialogs recorded in `errors`.

    Closing it runs the window's own shutdown, which stops every view's workers.
    """
    from desktop.qt.main_window import MainWindow

    win = MainWindow(provider="cpu")
    win.errors = []
    win.show_error = lambda title, text: win.errors.append((title, text))  # intercept dialogs
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


@pytest.fixture
def fake_launcher(tmp_path: Path, monkeypatch):
    """A Launcher for fake_trainer.FAKE, which the Train tab finds instead of a real convnet-train."""
    from fake_trainer import FAKE

    from desktop.core.trainer_launcher import Launcher
    from desktop.qt import train_view

    script = tmp_path / "fake_convnet_train.py"
    script.write_text(FAKE, encoding="utf-8")
    launcher = Launcher((sys.executable, str(script)), "a fake convnet-train for tests", "path")
    monkeypatch.setattr(train_view, "find_launcher", lambda: launcher)
    monkeypatch.delenv("FAKE_DIE", raising=False)
    return launcher


@pytest.fixture
def tab(window, fake_launcher, tmp_path: Path):
    """The Train tab of `window`, shown, running the fake convnet-train (fake_trainer.py)."""
    from desktop.qt.train_view import TrainView

    view = window.view(TrainView)
    view.ask_stop_and_close = lambda: True  # a failing test must not leave a modal question at teardown
    window.show_tab(view)
    return view
