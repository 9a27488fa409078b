"""Settings and models in the real window: persistence across windows, provider fallback, the Compare tab.

The settings tests that need no Qt are in tests/desktop/core/test_settings_and_models.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx_factory
import pytest

from desktop.core.providers import CPU_PROVIDER, NOTICE_CUDA_FALLBACK
from desktop.qt.compare_view import CompareView
from desktop.qt.main_window import MainWindow

WAIT_MS = 10_000


def _window(qtbot, provider: str | None = None) -> MainWindow:
    win = MainWindow(provider=provider)
    win.errors = []
    win.show_error = lambda title, text: win.errors.append((title, text))
    qtbot.addWidget(win)
    win.show()
    return win


def _load(qtbot, win: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(win.controller.model_changed, timeout=WAIT_MS):
        win.open_model(path)


def test_corrupt_settings_window_starts_with_notice(qtbot, isolated_config: Path) -> None:
    (isolated_config / "settings.json").write_text("{oops")
    win = _window(qtbot, "cpu")
    assert win.notice_bar.isVisible() and "corrupt" in win.notice_bar.text()
    win.close()
    assert json.loads((isolated_config / "settings.json").read_text())["provider"] == "cpu"  # rewritten cleanly


def test_settings_persist_across_windows(qtbot, colour_model: Path, models_dir: Path, tmp_path: Path) -> None:
    other = onnx_factory.save_model(tmp_path / "second.onnx")
    first = _window(qtbot, "cpu")
    _load(qtbot, first, colour_model)
    _load(qtbot, first, other)
    first.classify_view.viewer.colormap_combo.setCurrentText("Inferno")
    first.classify_view.viewer.opacity_slider.setValue(70)
    first.classify_view.splitter.setSizes([200, 500, 300])
    sizes = first.classify_view.panel_sizes()  # the hidden list counts with its width, never 0
    assert sizes[0] > 0
    first.close()

    other.unlink()  # gone before the next start: pruned from the menu with a message
    second = _window(qtbot)
    assert second.controller.provider == "cpu"
    assert (
        second.classify_view.viewer.colormap_name == "Inferno"
        and second.classify_view.viewer.opacity_slider.value() == 70
    )
    assert second.settings.get("splitter_sizes") == sizes
    assert second.classify_view.splitter.sizes()[2] == sizes[2]  # the side panel keeps its width
    assert second.settings.recent_models()[:2] == [other.resolve(), colour_model.resolve()]
    second.recent_menu.aboutToShow.emit()
    titles = [a.text() for a in second.recent_menu.actions()]
    assert titles == ["&1 colours.onnx"]
    assert "second.onnx" in second.statusBar().currentMessage()
    with qtbot.waitSignal(second.controller.model_changed, timeout=WAIT_MS):
        second.recent_menu.actions()[0].trigger()
    assert second.controller.model.info.path == colour_model
    second.close()


def test_cuda_request_falls_back_to_cpu_with_notice(qtbot, colour_model: Path) -> None:
    win = _window(qtbot, "cpu")
    _load(qtbot, win, colour_model)
    assert not win.notice_bar.isVisible()
    with qtbot.waitSignal(win.controller.model_changed, timeout=WAIT_MS):
        win.provider_actions["cuda"].trigger()
    model = win.controller.model
    if model.session.get_providers()[0] != CPU_PROVIDER:
        pytest.skip("CUDA is usable on this machine")
    assert model.provider_in_use == CPU_PROVIDER
    assert win.provider_status.text() == f"Provider: {CPU_PROVIDER}"
    assert win.classify_view.model_panel.values["Provider"].text() == "CPU"
    assert win.notice_bar.isVisible() and NOTICE_CUDA_FALLBACK in win.notice_bar.text()
    assert win.settings.get("provider") == "cuda" and win.provider_actions["cuda"].isChecked()
    win.close()


def test_compare_view_shows_both_models(qtbot, colour_model: Path, tmp_path: Path, write_png) -> None:
    swapped = np.eye(3, dtype=np.float32)[[2, 0, 1]] * 0.05  # red reads as "blue" here
    second_path = onnx_factory.save_model(tmp_path / "swapped.onnx", weights=swapped)
    win = _window(qtbot, "cpu")
    _load(qtbot, win, colour_model)
    win.open_images([write_png("r.png", onnx_factory.mostly((220, 0, 0)))])
    qtbot.waitUntil(lambda: win.classify_view.current is not None, timeout=WAIT_MS)
    compare = win.view(CompareView)
    win.tabs.setCurrentWidget(compare)
    compare.load_second_model(second_path)
    qtbot.waitUntil(lambda: compare.second_model is not None, timeout=WAIT_MS)

    def tops() -> tuple[str | None, str | None]:
        sides = (compare.left.panel.displayed(), compare.right.panel.displayed())
        return tuple(rows[0][0] if rows else None for rows in sides)

    qtbot.waitUntil(lambda: tops() == ("red", "blue"), timeout=WAIT_MS)
    assert len(compare.left.panel.displayed()) == 3 and len(compare.right.panel.displayed()) == 3
    assert "colours.onnx" in compare.left.name.text() and "swapped.onnx" in compare.right.name.text()
    assert compare.left.time.text().startswith("Inference:") and compare.right.time.text().startswith("Inference:")
    win.close()
