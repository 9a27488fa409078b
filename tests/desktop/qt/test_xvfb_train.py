"""The Train tab of the real app on a virtual X display, driven through a real run, screenshotted.

xvfb_train.py trains LeNet-5 with the real convnet-train, exports it and labels new
pictures with it; the PNGs land in test-artifacts/ (docs/screenshots/ is refreshed from
them). Marked slow as well: it trains a network.
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

pytestmark = [pytest.mark.xvfb, pytest.mark.slow]
STATES = ("train-dataset", "train-running", "train-results", "train-mistakes", "train-label")


def test_the_train_tab_draws_every_state_of_a_real_run(tmp_path: Path) -> None:
    _require_tools()
    pytest.importorskip("tensorflow")
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
        for state in STATES:
            (ARTIFACTS / f"view-{state}.png").unlink(missing_ok=True)
        result = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("xvfb_train.py")), str(ARTIFACTS), str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "error:" not in result.stdout, result.stdout
    finally:
        _stop(xvfb)
    for state in STATES:
        image = cv2.imread(str(ARTIFACTS / f"view-{state}.png"))
        assert _looks_like_a_window(image), state
