"""`convnet-studio --exit-when-ready`: the start-up benchmark's hook into the real app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _start(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        CONVNET_STUDIO_CONFIG_DIR=str(tmp_path / "cfg" / "convnet-studio"),
    )
    env.pop("CONVNET_STUDIO_MODEL", None)
    return subprocess.run(
        [sys.executable, "-m", "desktop.app", *args, "--exit-when-ready"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prints_start_up_time_and_memory_with_the_bundled_model(tmp_path):
    process = _start(tmp_path)
    assert process.returncode == 0, process.stderr[-2000:]
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert report["model"] == "digits-lenet5.onnx" and report["window_shown"] is True
    assert 0 < report["ready_s"] < 120 and 10 < report["rss_mb"] < 10_000


def test_a_model_that_fails_to_load_prints_the_error_and_exits_1(tmp_path):
    process = _start(tmp_path, str(tmp_path / "missing.onnx"))
    assert process.returncode == 1
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert "not found" in report["error"]
