"""Undo OpenCV's Qt environment variables before Qt starts.

opencv-python's cv2/__init__ points QT_QPA_PLATFORM_PLUGIN_PATH and QT_QPA_FONTDIR at
the Qt5 plugins bundled inside the cv2 package. PySide6 (Qt6) then tries to load those
Qt5 plugins and fails with "could not load the Qt platform plugin xcb".
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

OPENCV_QT_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")


def _opencv_package_dir() -> Path | None:
    spec = importlib.util.find_spec("cv2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def scrub_opencv_qt_env(environ: MutableMapping[str, str] | None = None, opencv_dir: Path | None = None) -> list[str]:
    """Remove Qt variables that point inside the cv2 package; return the names removed.

    Variables a user set to somewhere else are left alone.
    """
    environ = os.environ if environ is None else environ
    opencv_dir = opencv_dir if opencv_dir is not None else _opencv_package_dir()
    if opencv_dir is None:
        return []
    opencv_dir = Path(opencv_dir).resolve()
    removed = []
    for name in OPENCV_QT_VARIABLES:
        value = environ.get(name)
        if not value:
            continue
        target = Path(value).resolve()
        if target == opencv_dir or opencv_dir in target.parents:
            del environ[name]
            removed.append(name)
    return removed


def pyside_drops_singleton_refs() -> bool:
    """True for a PySide6 build that returns None/True/False without a reference.

    PySide6-Essentials 6.12.0 on Python 3.11 does: every `emit()` or void call takes a
    reference away, and after some hundreds of camera frames the interpreter aborts with
    "deallocating True or False". pyproject.toml keeps PySide6 below 6.12; a test calls
    this so an install that slips past the pin fails CI instead of users' sessions.
    """
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(16):
        probe.setObjectName("probe")
    return sys.getrefcount(None) <= before - 8
