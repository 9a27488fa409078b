"""The real window starts with a hostile settings file (tests/desktop/core/test_untrusted_files.py has the rest)."""

from __future__ import annotations

import json
from pathlib import Path

from test_untrusted_files import HOSTILE_VALUES

from desktop.core.settings import DEFAULTS


def test_window_starts_with_hostile_settings(qtbot, isolated_config: Path) -> None:
    from desktop.qt.main_window import MainWindow

    (isolated_config / "settings.json").write_text(json.dumps(HOSTILE_VALUES))
    win = MainWindow()
    qtbot.addWidget(win)
    assert win.controller.provider == "auto"
    assert win.classify_view.viewer.opacity_slider.value() == DEFAULTS["opacity"]
    win.close()
