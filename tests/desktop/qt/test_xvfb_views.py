"""Every view of the real app, on a virtual X display, screenshotted for review.

The PNGs land in test-artifacts/ (and are what docs/screenshots/ is refreshed from).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from test_xvfb_smoke import ARTIFACTS, _looks_like_a_window, run_script_under_xvfb

pytestmark = pytest.mark.xvfb
VIEWS = ("classify", "unknown", "batch", "camera", "augment", "compare")


def test_every_view_draws_on_a_real_display(tmp_path: Path) -> None:
    run_script_under_xvfb(Path(__file__).with_name("xvfb_views.py"), [str(ARTIFACTS), str(tmp_path)], timeout=240)
    for view in VIEWS:
        image = cv2.imread(str(ARTIFACTS / f"view-{view}.png"))
        assert _looks_like_a_window(image), view
