"""A run folder belongs to one `convnet-train train` at a time.

Two trainings on the same --out used to run side by side and leave a folder whose config
came from one and whose checkpoint from the other. With two real processes: the second
`train --out SAME` and `train --resume SAME` fail at once naming the first's pid while it
trains, and once the first is SIGKILLed its leftover .lock blocks nobody.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from kill_helpers import ROOT, child_env, sigkill, start

from training.run_lock import RunInUseError, RunLock

pytestmark = pytest.mark.slow

TRAIN = "import sys\nfrom training.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def _data(root: Path) -> Path:
    for index, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(8):
            cv2.imwrite(str(root / name / f"{i}.png"), np.full((16, 16, 3), 40 + 120 * index, np.uint8))
    return root


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", TRAIN, *args], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120
    )


def _wait_for(condition, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"training ended too soon: {process.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_train_on_the_same_folder_fails_at_once(tmp_path: Path) -> None:
    data = _data(tmp_path / "data")
    run_dir = tmp_path / "run"
    first = start(
        TRAIN,
        "train",
        str(data),
        "--backbone",
        "lenet5",
        "--weights",
        "none",
        "--epochs",
        "500",
        "--batch-size",
        "4",
        "--augment",
        "none",
        "--no-tensorboard",
        "--early-stopping-patience",
        "0",
        "--out",
        str(run_dir),
        stdout=subprocess.DEVNULL,
    )
    try:
        state = run_dir / "checkpoints" / "state.json"
        _wait_for(state.is_file, first)
        config = (run_dir / "config.yaml").read_bytes()
        for args in (
            ["train", str(data), "--backbone", "lenet5", "--weights", "none", "--epochs", "1", "--out", str(run_dir)],
            ["train", "--resume", str(run_dir)],
        ):
            second = _cli(*args)
            assert second.returncode == 2, second.stderr[-3000:]
            assert f"{run_dir} is in use by another convnet-train (pid {first.pid})" in second.stderr
            assert "Epoch" not in second.stderr
        assert first.poll() is None, "the first run was disturbed"
        assert (run_dir / "config.yaml").read_bytes() == config
    finally:
        sigkill(first)
    assert (run_dir / ".lock").is_file()  # left by the killed process: it must not block
    with RunLock(run_dir, create=False):
        pass
    again = _cli("train", str(data), "--backbone", "lenet5", "--weights", "none", "--out", str(run_dir))
    assert again.returncode == 2 and "already holds a run" in again.stderr, again.stderr[-3000:]
    assert "in use" not in again.stderr


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    run_dir = tmp_path / "new" / "run"
    with RunLock(run_dir):
        assert (run_dir / ".lock").is_file()
        with pytest.raises(RunInUseError, match=r"in use by another convnet-train \(pid \d+\)"):
            with RunLock(run_dir):
                pass
    assert not run_dir.exists(), "a folder made only for the lock is removed again"
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("mine")
    with RunLock(run_dir):
        pass
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]
