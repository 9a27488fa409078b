"""The set-up scripts: one venv serves the tests and `convnet-train` without reinstalling.

scripts/ensure-venv.sh is driven against a fake venv whose `python` only logs what it was
asked to do, so the decisions (install or not, and which extras) are checked in
milliseconds without touching pip.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENSURE = ROOT / "scripts" / "ensure-venv.sh"


def _project_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/calls.log"\n')
    python.chmod(0o755)
    return venv


def _ensure(venv: Path, target: str) -> tuple[str, list[str]]:
    result = subprocess.run(["bash", str(ENSURE), str(venv), target], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    log = venv.parent / "calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    return result.stdout.strip(), calls


def _installs(calls: list[str]) -> list[str]:
    return [c.split(" -e ", 1)[1] for c in calls if " -e " in c]


def test_a_venv_with_more_extras_is_left_alone(fake_venv):
    (fake_venv / ".convnet-studio-installed").write_text(f"{_project_hash()} .[train,test]\n")
    printed, calls = _ensure(fake_venv, ".[train]")
    assert printed == f"{fake_venv}/bin/python"
    assert calls == []


def test_a_new_install_keeps_the_extras_already_there(fake_venv):
    stamp = fake_venv / ".convnet-studio-installed"
    stamp.write_text(f"{_project_hash()} .[train]\n")
    _, calls = _ensure(fake_venv, ".[train,test]")
    assert _installs(calls) == [".[test,train]"]
    assert stamp.read_text().split() == [_project_hash(), ".[test,train]"]
    # ...and asking for training alone afterwards installs nothing more.
    (fake_venv.parent / "calls.log").unlink()
    assert _ensure(fake_venv, ".[train]")[1] == []


def test_a_changed_project_file_reinstalls_with_the_union(fake_venv):
    (fake_venv / ".convnet-studio-installed").write_text("0000000000000000 .[test]\n")
    _, calls = _ensure(fake_venv, ".[train]")
    assert _installs(calls) == [".[test,train]"]


def test_the_app_venv_gets_no_extras(fake_venv):
    _, calls = _ensure(fake_venv, ".")
    assert _installs(calls) == ["."]
    assert (fake_venv / ".convnet-studio-installed").read_text().split() == [_project_hash(), "."]


@pytest.mark.skipif(not (ROOT / ".venv" / ".convnet-studio-installed").exists(), reason="needs the project's .venv")
def test_run_train_passes_its_arguments_to_convnet_train():
    """./run-train.sh reuses .venv (made by run-tests.sh) and runs convnet-train, no tests."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(ROOT / "run-train.sh"), "train", "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: convnet-train train")
    no_args = subprocess.run([str(ROOT / "run-train.sh")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert no_args.returncode == 0 and no_args.stdout.startswith("usage: convnet-train")


@pytest.mark.skipif(not (ROOT / ".venv" / ".convnet-studio-installed").exists(), reason="needs the project's .venv")
def test_run_train_keeps_the_callers_folder_for_relative_paths(tmp_path):
    """Paths given to ./run-train.sh are the user's, relative to where they typed it."""
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "photo.png"), np.full((40, 60, 3), 128, np.uint8))
    result = subprocess.run(
        [
            str(ROOT / "run-train.sh"),
            "augment-preview",
            "photo.png",
            "--out",
            "grid.png",
            "--count",
            "2",
            "--size",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "grid.png").is_file()


def test_run_app_keeps_the_callers_folder():
    """run-app.sh must not cd: a relative model or image path is the user's."""
    script = (ROOT / "run-app.sh").read_text()
    assert "\ncd " not in script and "$here/" in script
