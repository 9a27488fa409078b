"""Qt test setup: headless Qt, OpenCV's Qt variables scrubbed, and the `window` fixture."""

from __future__ import annotations

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
