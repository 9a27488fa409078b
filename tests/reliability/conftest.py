"""Reliability tests: the desktop tests' model factory, and Qt kept headless."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
DESKTOP_TESTS = Path(__file__).resolve().parents[1] / "desktop"
if str(DESKTOP_TESTS) not in sys.path:
    sys.path.insert(0, str(DESKTOP_TESTS))

import cv2  # noqa: E402,F401 - imported first so its Qt variables exist to be scrubbed

from desktop.qt.environment import scrub_opencv_qt_env  # noqa: E402 - after the sys.path entry above

scrub_opencv_qt_env()

import onnx_factory  # noqa: E402 - found through the sys.path entry added above


@pytest.fixture(scope="session")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The red/green/blue model of tests/desktop (mean colour → class)."""
    return onnx_factory.save_model(tmp_path_factory.mktemp("models") / "colours.onnx")


@pytest.fixture(autouse=True)
def isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing here reads or writes the real ~/.config."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("CONVNET_STUDIO_CONFIG_DIR", str(folder))
    return folder
