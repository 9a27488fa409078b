"""The tabs of the main window, in order: adding a tab is one module and one line here.

Each class is a QWidget with the TabView interface (desktop/qt/tab_view.py), built as
`cls(controller)`. The window gives each its tab, View-menu shortcut, menu entries and
saved settings, and shuts every one down when it closes. Compare stays last.
"""

from __future__ import annotations

from desktop.qt.augment_view import AugmentView
from desktop.qt.batch_view import BatchView
from desktop.qt.camera_view import CameraView
from desktop.qt.classify_view import ClassifyView
from desktop.qt.compare_view import CompareView
from desktop.qt.train_view import TrainView

TAB_VIEWS = (ClassifyView, BatchView, CameraView, AugmentView, TrainView, CompareView)
