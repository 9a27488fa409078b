"""Where the app finds convnet-train: this Python, the project's .venv, or PATH, each
checked for TensorFlow without importing it; and the install command when none can train.
Fake interpreters (shell scripts that answer the probe) stand in for real ones."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import desktop.core.trainer_launcher as trainer_launcher
from desktop.core.train_settings import list_backbones
from desktop.core.trainer_launcher import (
    ON_PATH,
    PROJECT_VENV,
    THIS_PYTHON,
    Launcher,
    TrainerMissing,
    find_launcher,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fake interpreters are shell scripts")


def fake_python(path: Path, can_train: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nexit {0 if can_train else 1}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with ensure-venv.sh, an app that cannot train, and an empty PATH."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "ensure-venv.sh").write_text("#!/bin/sh\n")
    (root / "pyproject.toml").write_text("")
    monkeypatch.setattr(trainer_launcher, "_importable", lambda name: False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + "/bin" + os.pathsep + "/usr/bin")
    return root


def test_this_python_when_tensorflow_is_importable_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(trainer_launcher, "_importable", lambda name: True)
    found = find_launcher(root=tmp_path)
    assert found == Launcher((sys.executable, "-m", "training.cli"), found.description, THIS_PYTHON)


def test_the_project_venv_when_its_python_can_train(project: Path):
    fake_python(project / ".venv" / "bin" / "python", can_train=True)
    found = find_launcher(root=project)
    assert isinstance(found, Launcher) and found.source == PROJECT_VENV
    assert found.argv == (str(project / ".venv" / "bin" / "python"), "-m", "training.cli")


def test_path_when_the_venv_cannot_train_and_never_the_apps_own_script(project: Path, tmp_path: Path):
    fake_python(project / ".venv" / "bin" / "python", can_train=False)
    app_python = fake_python(tmp_path / "app-env" / "python", can_train=False)
    script = tmp_path / "bin" / "convnet-train"
    script.parent.mkdir()
    script.write_text(f"#!{app_python}\n")
    script.chmod(0o755)
    missing = find_launcher(root=project)
    assert isinstance(missing, TrainerMissing)
    assert "has no TensorFlow" in missing.explanation and "without TensorFlow" in missing.explanation
    train_python = fake_python(tmp_path / "train-env" / "python", can_train=True)
    script.write_text(f"#!{train_python}\n")
    found = find_launcher(root=project)
    assert isinstance(found, Launcher) and found.source == ON_PATH and found.argv == (str(script),)


def test_missing_gives_the_install_command_for_the_project_venv(project: Path):
    missing = find_launcher(root=project)
    assert isinstance(missing, TrainerMissing)
    assert missing.install_argv[1:] == (str(project / "scripts" / "ensure-venv.sh"), ".venv", ".[train]")
    assert missing.install_cwd == project and missing.venv == project / ".venv"


def test_the_install_never_targets_the_environment_the_app_runs_from(project: Path, monkeypatch):
    app_venv = project / ".venv"
    fake_python(app_venv / "bin" / "python", can_train=True)  # would answer yes, but it is the app's own
    monkeypatch.setattr(sys, "prefix", str(app_venv))
    missing = find_launcher(root=project)
    assert isinstance(missing, TrainerMissing)
    assert missing.install_argv[2:] == (".venv-train", ".[train]") and missing.venv == project / ".venv-train"
    fake_python(project / ".venv-train" / "bin" / "python", can_train=True)
    assert find_launcher(root=project).argv[0] == str(project / ".venv-train" / "bin" / "python")


def test_no_checkout_means_no_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(trainer_launcher, "_importable", lambda name: False)
    monkeypatch.setattr(trainer_launcher, "project_root", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = find_launcher()
    assert isinstance(missing, TrainerMissing) and missing.install_argv is None
    assert "convnet-studio[train]" in missing.explanation


def test_a_hanging_python_is_not_waited_for(project: Path):
    python = project / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexec sleep 30\n")
    python.chmod(0o755)
    assert isinstance(find_launcher(root=project, timeout=0.5), TrainerMissing)


def test_the_real_search_finds_something_usable():
    """Whatever this machine has: a launcher whose `models` answers, or an explanation."""
    found = find_launcher()
    if isinstance(found, TrainerMissing):
        assert found.explanation
        return
    assert "mobilenet_v2" in [b.name for b in list_backbones(found, timeout=120)]
