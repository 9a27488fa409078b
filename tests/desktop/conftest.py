"""Desktop test setup shared by tests/desktop/core and tests/desktop/qt: the generated models.

Nothing here imports Qt, so the core tests run without PySide6 or pytest-qt
(tests/test_test_layout.py checks that). Qt-only fixtures are in tests/desktop/qt/conftest.py.
The helpers (onnx_factory here, test modules in core/) are importable from both folders.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE / "core"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import onnx_factory  # noqa: E402 - found through the sys.path entry added above


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
