"""Desktop test setup: headless Qt, and the generated models every test file uses."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import cv2  # noqa: E402,F401 - imported first so its Qt variables exist to be scrubbed
import pytest  # noqa: E402

from desktop.qt.environment import scrub_opencv_qt_env  # noqa: E402

scrub_opencv_qt_env()

import onnx_factory  # noqa: E402


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def colour_model(models_dir: Path) -> Path:
    """The red/green/blue model with full metadata and activation maps."""
    return onnx_factory.save_model(models_dir / "colours.onnx")


@pytest.fixture(scope="session")
def plain_model(models_dir: Path) -> Path:
    """The same graph without ConvNet Studio metadata (it still has a `cam` output)."""
    return onnx_factory.save_model(models_dir / "plain.onnx", metadata=None)


@pytest.fixture
def write_png(tmp_path: Path):
    def write(name: str, rgb, folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return path

    return write


@pytest.fixture(autouse=True)
def isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own settings folder: nothing reads or writes the real ~/.config."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("CONVNET_STUDIO_CONFIG_DIR", str(folder))
    return folder


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
