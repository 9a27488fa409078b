"""The Train tab of the real app on a virtual X display, driven through a real run, screenshotted.

xvfb_train.py trains LeNet-5 with the real convnet-train, exports it and labels new
pictures with it; the PNGs land in test-artifacts/ (docs/screenshots/ is refreshed from
them). Marked slow as well: it trains a network.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from test_xvfb_smoke import ARTIFACTS, _looks_like_a_window, run_script_under_xvfb

pytestmark = [pytest.mark.xvfb, pytest.mark.slow]
STATES = ("train-dataset", "train-running", "train-results", "train-mistakes", "train-label")


def test_the_train_tab_draws_every_state_of_a_real_run(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    for state in STATES:
        (ARTIFACTS / f"view-{state}.png").unlink(missing_ok=True)
    run_script_under_xvfb(Path(__file__).with_name("xvfb_train.py"), [str(ARTIFACTS), str(tmp_path)], timeout=540)
    for state in STATES:
        image = cv2.imread(str(ARTIFACTS / f"view-{state}.png"))
        assert _looks_like_a_window(image), state
