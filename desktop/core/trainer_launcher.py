"""Where the app finds a `convnet-train` that can train, and what to do when there is none.

The app never imports TensorFlow (pyproject's import contracts): it trains by running
`convnet-train` as a child process. The app usually runs in .venv-app, which has no
TensorFlow, while ./run-train.sh and ./run-tests.sh keep one in the project's .venv; so
the search is, in order:

  1. this interpreter, when TensorFlow is importable here (checked with find_spec: the
     import itself takes seconds and hundreds of MB the app must not spend);
  2. the project's own training environment (.venv next to the project, as
     scripts/ensure-venv.sh makes it), when its python can find TensorFlow;
  3. `convnet-train` on PATH, when the python in its #! line can find TensorFlow (the
     app's own .venv-app/bin/convnet-train exists too but cannot train).

When none fits, `TrainerMissing` explains why and carries the command that installs one
(ensure-venv.sh, run as a child so its log can be shown). It never installs into the
environment the app is running from: pip upgrading NumPy under a running app breaks it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

THIS_PYTHON, PROJECT_VENV, ON_PATH = "this-python", "project-venv", "path"
TRAIN_VENVS = (".venv", ".venv-train")  # the first is run-train.sh's; the second only if the app runs from it
PROBE_TIMEOUT_S = 15.0
_PROBE = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('tensorflow') and u.find_spec('training') else 1)"


@dataclass(frozen=True)
class Launcher:
    """How to run convnet-train: `[*argv, "train", ...]`. `description` is for the user."""

    argv: tuple[str, ...]
    description: str
    source: str  # THIS_PYTHON, PROJECT_VENV or ON_PATH


@dataclass(frozen=True)
class TrainerMissing:
    """No usable convnet-train. `install_argv` (run in `install_cwd`) creates one, or is
    None where this checkout cannot (an installed app, no bash); `explanation` says why."""

    explanation: str
    install_argv: tuple[str, ...] | None
    install_cwd: Path | None
    venv: Path | None  # where the install puts it; find_launcher looks there afterwards


def _importable(name: str) -> bool:
    """find_spec without importing; an import hook that refuses the name counts as no."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def project_root() -> Path | None:
    """The checkout the app runs from (it has pyproject.toml and scripts/), or None."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "scripts" / "ensure-venv.sh").is_file():
        return root
    return None


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def python_can_train(python: str | os.PathLike[str], timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether `python` can find TensorFlow and the training package, without importing
    either (a fresh interpreter answers in well under a second; a broken one, never)."""
    try:
        done = subprocess.run(
            [os.fspath(python), "-c", _PROBE],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _running_from(venv: Path) -> bool:
    try:
        return Path(sys.prefix).resolve() == venv.resolve()
    except OSError:
        return False


def _shebang_python(script: Path) -> str | None:
    """The interpreter named by a console script's #! line (pip writes an absolute path)."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if not words or words[0].endswith("/env"):
        return None
    return words[0]


def find_launcher(root: Path | None = None, timeout: float = PROBE_TIMEOUT_S) -> Launcher | TrainerMissing:
    """The first usable convnet-train of the three places (module docstring), or why none.

    `root` is the project checkout (default: the one this file is in, if any). Slow only
    when a candidate python is probed: at most one short child per candidate.
    """
    if _importable("tensorflow") and _importable("training"):
        return Launcher(
            (sys.executable, "-m", "training.cli"), f"this Python ({sys.executable}) has TensorFlow", THIS_PYTHON
        )
    root = root if root is not None else project_root()
    tried = []
    if root is not None:
        for name in TRAIN_VENVS:
            python = venv_python(root / name)
            if not python.is_file() or _running_from(root / name):
                continue
            if python_can_train(python, timeout):
                return Launcher(
                    (str(python), "-m", "training.cli"),
                    f"the project's training environment ({root / name})",
                    PROJECT_VENV,
                )
            tried.append(f"{root / name} has no TensorFlow")
    script = shutil.which("convnet-train")
    if script is not None:
        python = _shebang_python(Path(script))
        if python is None or python_can_train(python, timeout):
            return Launcher((script,), f"convnet-train on PATH ({script})", ON_PATH)
        tried.append(f"{script} runs a Python without TensorFlow")
    return _missing(root, tried)


def _missing(root: Path | None, tried: list[str]) -> TrainerMissing:
    found = ("; ".join(tried) + ".") if tried else "no training environment was found."
    if root is None:
        return TrainerMissing(
            "Training needs TensorFlow, which the app does not install: " + found + " Install it with "
            "`pip install 'convnet-studio[train]'` in a separate environment and put its convnet-train on PATH.",
            None,
            None,
            None,
        )
    venv = next((root / name for name in TRAIN_VENVS if not _running_from(root / name)), root / TRAIN_VENVS[-1])
    bash = shutil.which("bash")
    script = root / "scripts" / "ensure-venv.sh"
    if bash is None or sys.platform == "win32" or not script.is_file():
        return TrainerMissing(
            "Training needs TensorFlow, which the app does not install: " + found + " Create the training "
            f"environment with `python -m venv {venv.name}` and `{venv.name}/Scripts/pip install -e .[train]` "
            f"in {root}.",
            None,
            None,
            venv,
        )
    return TrainerMissing(
        "Training needs TensorFlow, which the app does not install: " + found + f" Installing it creates {venv} "
        "(about 2 GB of downloads, a few minutes); the app's own environment is left as it is.",
        (bash, str(script), venv.name, ".[train]"),
        root,
        venv,
    )
