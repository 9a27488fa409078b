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
