"""The OpenCV/Qt environment clash fix."""

from __future__ import annotations

from pathlib import Path

import cv2

from desktop.qt.environment import scrub_opencv_qt_env


def test_removes_variables_pointing_inside_cv2(tmp_path: Path) -> None:
    opencv_dir = tmp_path / "site-packages" / "cv2"
    env = {
        "QT_QPA_PLATFORM_PLUGIN_PATH": str(opencv_dir / "qt" / "plugins"),
        "QT_QPA_FONTDIR": str(opencv_dir / "qt" / "fonts"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    removed = scrub_opencv_qt_env(env, opencv_dir=opencv_dir)
    assert sorted(removed) == ["QT_QPA_FONTDIR", "QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert env == {"QT_QPA_PLATFORM": "offscreen"}


def test_keeps_user_settings_elsewhere(tmp_path: Path) -> None:
    opencv_dir = tmp_path / "cv2"
    env = {"QT_QPA_PLATFORM_PLUGIN_PATH": str(tmp_path / "my-plugins"), "QT_QPA_FONTDIR": str(tmp_path / "cv2-fonts")}
    assert scrub_opencv_qt_env(env, opencv_dir=opencv_dir) == []
    assert len(env) == 2


def test_finds_the_real_cv2_package() -> None:
    cv2_dir = Path(cv2.__file__).resolve().parent
    env = {"QT_QPA_PLATFORM_PLUGIN_PATH": str(cv2_dir / "qt" / "plugins")}
    assert scrub_opencv_qt_env(env) == ["QT_QPA_PLATFORM_PLUGIN_PATH"]


def test_pyside_keeps_references_to_none_true_false() -> None:
    """The installed PySide6 must not be a build that leaks the singletons away."""
    import sys

    from PySide6.QtCore import QObject, Signal

    from desktop.qt.environment import pyside_drops_singleton_refs

    class Emitter(QObject):
        fired = Signal(object)

    emitter = Emitter()
    emitter.fired.connect(lambda value: None)
    before = (sys.getrefcount(None), sys.getrefcount(True))
    for _ in range(2000):
        emitter.fired.emit(1)
        emitter.setObjectName("x")
    after = (sys.getrefcount(None), sys.getrefcount(True))
    assert after[0] >= before[0] - 50 and after[1] >= before[1] - 50, (before, after)
    assert not pyside_drops_singleton_refs()
