"""The CPU-fallback notice in the real window: no banner where it does not help, closable for good.

The notice board and convnet-classify's note are tested without Qt in
tests/desktop/core/test_cuda_notice.py; its `gpu_present` fixture is shared here.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_cuda_notice import WAIT_MS, _skip_if_cuda_works, gpu_present  # noqa: F401 - gpu_present is a fixture

from desktop.core.notices import Notice
from desktop.core.providers import FALLBACK_GPU_UNUSABLE, NOTICE_CUDA_FALLBACK, NOTICE_GPU_UNUSABLE
from desktop.core.settings import Settings
from desktop.qt.main_window import MainWindow


def _window(qtbot, provider: str | None) -> MainWindow:
    win = MainWindow(provider=provider)
    win.errors = []
    win.show_error = lambda title, text: win.errors.append((title, text))
    qtbot.addWidget(win)
    win.show()
    return win


def _load(qtbot, win: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(win.controller.model_changed, timeout=WAIT_MS):
        win.open_model(path)


def test_no_gpu_auto_start_has_no_banner(qtbot, colour_model: Path, gpu_present) -> None:
    gpu_present(False)
    win = _window(qtbot, "auto")
    _load(qtbot, win, colour_model)
    _skip_if_cuda_works(win.controller.model)
    assert win.notice_bar.isHidden()
    assert win.provider_status.text() == "Provider: CPUExecutionProvider"  # what runs is still shown
    win.close()


def test_banner_closes_for_good(qtbot, colour_model: Path, gpu_present, isolated_config: Path) -> None:
    gpu_present(True)
    win = _window(qtbot, "auto")
    _load(qtbot, win, colour_model)
    _skip_if_cuda_works(win.controller.model)
    assert win.notice_bar.isVisible() and win.notice_bar.text() == NOTICE_GPU_UNUSABLE
    assert win.provider_status.toolTip() == NOTICE_GPU_UNUSABLE
    win.notice_bar.close_button.click()
    assert win.notice_bar.isHidden()
    saved = json.loads((isolated_config / "settings.json").read_text())
    assert saved["dismissed_notices"] == [FALLBACK_GPU_UNUSABLE]  # on disk at once, not only at exit
    _load(qtbot, win, colour_model)  # reload: still closed
    assert win.notice_bar.isHidden()
    win.close()

    again = _window(qtbot, "auto")  # next start
    _load(qtbot, again, colour_model)
    assert again.notice_bar.isHidden()
    with qtbot.waitSignal(again.controller.model_changed, timeout=WAIT_MS):
        again.set_provider("cuda")  # a different reason: the user asked for CUDA
    assert again.notice_bar.isVisible() and again.notice_bar.text() == NOTICE_CUDA_FALLBACK
    again.close()
    assert Settings.load().get("dismissed_notices") == [FALLBACK_GPU_UNUSABLE]


def test_banner_text_is_plain(qtbot) -> None:
    win = _window(qtbot, "cpu")
    win.notices.set_model_notices([Notice("<b>model.onnx</b> has no metadata")])
    win._show_notices()
    assert win.notice_bar.label.textFormat().name == "PlainText"
    win.close()
