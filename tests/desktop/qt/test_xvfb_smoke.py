"""Start the real app on a virtual X display and screenshot it.

Catches what offscreen tests cannot: the xcb platform plugin failing to load (the
OpenCV/Qt5 clash), a crash at start-up, or a window that never paints.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx_factory
import pytest

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.xvfb


def _require_tools() -> None:
    missing = [tool for tool in ("Xvfb", "import") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} on PATH (install with scripts/system-deps.sh --test)")


def _free_display() -> int:
    for number in range(99, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    pytest.skip("no free X display number between :99 and :199")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _screenshot(display: str, target: Path) -> np.ndarray | None:
    env = {**os.environ, "DISPLAY": display}
    result = subprocess.run(["import", "-window", "root", str(target)], env=env, capture_output=True, timeout=15)
    if result.returncode != 0 or not target.exists():
        return None
    return cv2.imread(str(target), cv2.IMREAD_COLOR)


def _looks_like_a_window(image: np.ndarray | None) -> bool:
    """More than a blank screen: many distinct colours and real contrast."""
    if image is None:
        return False
    colours = np.unique(image.reshape(-1, 3)[::7], axis=0)
    return len(colours) >= 8 and float(image.std()) > 10.0


def run_script_under_xvfb(script: Path, args: list[str], timeout: int) -> subprocess.CompletedProcess:
    """Run a Python script on a fresh virtual X display (Qt on xcb) and stop the display after.

    The script must exit 0 and print no "error:" line; the xvfb_*.py screenshot scripts
    write their PNGs to ARTIFACTS.
    """
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
        result = subprocess.run(
            [sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "error:" not in result.stdout, result.stdout
        return result
    finally:
        _stop(xvfb)


def run_app_under_xvfb(
    args: list[str], screenshot: Path, settle_s: float = 1.5, max_wait_s: float = 20.0
) -> np.ndarray:
    """Start Xvfb and the app, return the first screenshot that shows the window."""
    _require_tools()
    number = _free_display()
    display = f":{number}"
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    app = None
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if xvfb.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Xvfb did not start on {display}")
            time.sleep(0.1)
        env = {key: value for key, value in os.environ.items() if not key.startswith("QT_QPA")}
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO))
        app = subprocess.Popen(
            [sys.executable, "-m", "desktop.app", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        image = None
        deadline = time.monotonic() + max_wait_s
        while time.monotonic() < deadline:
            if app.poll() is not None:
                output = app.stdout.read().decode(errors="replace")
                pytest.fail(f"the app exited with status {app.returncode}:\n{output[-3000:]}")
            image = _screenshot(display, screenshot)
            if _looks_like_a_window(image):
                time.sleep(settle_s)  # let the model load and the first paint settle
                image = _screenshot(display, screenshot)
                break
            time.sleep(0.5)
        assert app.poll() is None, "the app died while being screenshotted"
        assert _looks_like_a_window(image), f"no window appeared within {max_wait_s:.0f} s (see {screenshot})"
        return image
    finally:
        if app is not None:
            _stop(app)
            app.stdout.close()
        _stop(xvfb)


def test_app_starts_and_paints_under_xvfb(tmp_path: Path) -> None:
    model = onnx_factory.save_model(tmp_path / "colours.onnx")
    image_path = tmp_path / "red.png"
    cv2.imwrite(str(image_path), cv2.cvtColor(onnx_factory.mostly((230, 30, 30), 200, 200), cv2.COLOR_RGB2BGR))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "xvfb-smoke.png"
    image = run_app_under_xvfb([str(model), str(image_path)], shot)
    assert image.shape[:2] == (800, 1280)
