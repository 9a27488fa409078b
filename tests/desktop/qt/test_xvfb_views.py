"""Every view of the real app, on a virtual X display, screenshotted for review.

The PNGs land in test-artifacts/ (and are what docs/screenshots/ is refreshed from).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from test_xvfb_smoke import ARTIFACTS, REPO, _free_display, _looks_like_a_window, _require_tools, _stop

pytestmark = pytest.mark.xvfb
VIEWS = ("classify", "batch", "camera", "augment", "compare")


def test_every_view_draws_on_a_real_display(tmp_path: Path) -> None:
    _require_tools()
    number = _free_display()
    xvfb = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert xvfb.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("QT_QPA")}
        env.update(DISPLAY=f":{number}", QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO))
        ARTIFACTS.mkdir(exist_ok=True)
        script = Path(__file__).with_name("xvfb_views.py")
        result = subprocess.run(
            [sys.executable, str(script), str(ARTIFACTS), str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "error:" not in result.stdout, result.stdout
    finally:
        _stop(xvfb)
    for view in VIEWS:
        image = cv2.imread(str(ARTIFACTS / f"view-{view}.png"))
        assert _looks_like_a_window(image), view
