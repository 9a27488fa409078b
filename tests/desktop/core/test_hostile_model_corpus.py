"""Every hostile model (tests/desktop/hostile_models.py) is refused by the library and by the CLI.

One line naming the file, exit 2 from `convnet-classify`, nothing classified, and the
process stays small: each CLI run is watched (resident memory over 2 GB or past the
timeout fails the test), with an address-space limit as the backstop.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import hostile_models
import numpy as np
import pytest

from desktop.core.model import ModelLoadError, load_model

ROOT = Path(__file__).resolve().parents[3]
WATCH_LIMIT = 2 * 1024**3
BACKSTOP = 10 * 1024**3
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile-models")
    return folder, hostile_models.build_hostile_models(folder)


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("picture") / "red.png"
    cv2.imwrite(str(path), np.full((32, 32, 3), (0, 0, 230), np.uint8))
    return path


def _limit_address_space() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (BACKSTOP, BACKSTOP))


def _resident(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def test_the_library_refuses_every_hostile_model(corpus, monkeypatch) -> None:
    folder, expected = corpus
    assert len(expected) >= 18 and hostile_models.SLOW_MODEL in expected
    for name, pattern in expected.items():
        monkeypatch.delenv(hostile_models.SLOW_LIMIT_ENV, raising=False)
        for key, value in hostile_models.limit_env(name).items():
            monkeypatch.setenv(key, value)
        with pytest.raises(ModelLoadError) as refused:
            load_model(folder / name, provider="cpu")
        message = str(refused.value)
        assert message.startswith(name) and re.search(pattern, message), (name, message)
        assert "\n" not in message, message


@pytest.mark.skipif(sys.platform != "linux", reason="the watch reads /proc")
def test_convnet_classify_refuses_every_hostile_model_in_one_line(corpus, picture, tmp_path: Path) -> None:
    folder, expected = corpus
    for name, pattern in expected.items():
        env = {k: v for k, v in os.environ.items() if k != hostile_models.SLOW_LIMIT_ENV}
        env.update(hostile_models.limit_env(name))
        csv = tmp_path / f"{name}.csv"
        command = [sys.executable, "-m", "desktop.classify_cli", "--model", str(folder / name), str(picture)]
        child = subprocess.Popen(
            [*command, "--csv", str(csv)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_limit_address_space,  # a plain setrlimit in the child: no locks taken
        )
        started = time.monotonic()
        try:
            while child.poll() is None:
                assert _resident(child.pid) < WATCH_LIMIT, f"convnet-classify took over 2 GB on {name}"
                assert time.monotonic() - started < TIMEOUT_S, f"convnet-classify ran past {TIMEOUT_S} s on {name}"
                time.sleep(0.01)
        finally:
            if child.poll() is None:
                child.kill()
            out, err = child.communicate()
        lines = err.decode().strip().splitlines()
        assert child.returncode == 2, (name, child.returncode, lines)
        assert len(lines) == 1 and name in lines[0] and re.search(pattern, lines[0]), (name, lines)
        assert not out.strip() and not csv.exists(), (name, out)
