"""A model's first run happens in a guarded child: sizes computed when run cannot take the machine.

The pre-check reads the file and refuses what it can prove (tests/desktop/core/
test_exploding_graphs.py). These graphs pass it: their sizes come from arithmetic on the
input's shape (Shape -> Mul -> ConstantOfShape), from Resize scales or Pad amounts, or
they are simply minutes of work. convnet_common/model_probe.py runs every new model first
in a child under a memory and a time limit and refuses it with a message.
(convnet_common/model_probe.py: convnet-train evaluate uses it too.)

Each load here runs in its own child process, watched by the test: over 2 GB of
resident memory or past the timeout fails the test instead of the machine, and an
address-space limit (inherited by the probe) is the last backstop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import onnx_factory
import pytest

from convnet_common import model_probe
from desktop.core.model import ModelLoadError, load_model

ROOT = Path(__file__).resolve().parents[3]
WATCH_LIMIT = 2 * 1024**3
BACKSTOP = 10 * 1024**3
TIMEOUT_S = 90
CHILD = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({BACKSTOP}, {BACKSTOP}))
from desktop.core.model import ModelLoadError, load_model
try:
    load_model(sys.argv[1], provider="cpu")
    print("LOADED")
except ModelLoadError as error:
    print("REFUSED", error)
"""


def _resident(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _load_in_watched_child(path: Path, env: dict[str, str]) -> tuple[str, float]:
    """What load_model said, and the seconds it took; fails the test over WATCH_LIMIT or TIMEOUT_S."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    started = time.monotonic()
    try:
        while child.poll() is None:
            if _resident(child.pid) > WATCH_LIMIT:
                pytest.fail(f"loading {path.name} took over {WATCH_LIMIT >> 30} GB in the loading process")
            if time.monotonic() - started > TIMEOUT_S:
                pytest.fail(f"loading {path.name} ran past {TIMEOUT_S} s")
            time.sleep(0.01)
    finally:
        if child.poll() is None:
            child.kill()
        out, err = child.communicate()
    seconds = time.monotonic() - started
    return (out.decode().strip() or err.decode().strip()[-2000:]), seconds


@pytest.fixture
def probe_env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), **{model_probe.CACHE_ENV: str(tmp_path / "cache")})


@pytest.mark.skipif(sys.platform != "linux", reason="the watch reads /proc")
@pytest.mark.parametrize("kind", ["runtime_constant_of_shape", "filling_constant_of_shape", "resize", "pad"])
def test_a_graph_that_asks_for_gigabytes_when_run_is_refused(tmp_path: Path, probe_env, kind: str) -> None:
    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(onnx_factory.exploding_model(kind).SerializeToString())
    assert path.stat().st_size < 3000
    said, _ = _load_in_watched_child(path, probe_env)
    assert said == f"REFUSED {kind}.onnx was refused: its test run needed more than 1.0 GB of memory", said
    assert not list((tmp_path / "cache").rglob("*.json")), "a refused model must not be remembered as checked"


@pytest.mark.skipif(sys.platform != "linux", reason="the watch reads /proc")
def test_a_graph_that_runs_for_minutes_is_refused_at_the_time_limit(tmp_path: Path, probe_env) -> None:
    path = tmp_path / "slow.onnx"
    path.write_bytes(onnx_factory.exploding_model("slow_matmul").SerializeToString())
    said, seconds = _load_in_watched_child(path, dict(probe_env, **{model_probe.SECONDS_ENV: "3"}))
    assert said == "REFUSED slow.onnx was refused: its test run took longer than 3 s", said
    assert seconds < 20, seconds


def test_a_checked_model_is_remembered_by_its_bytes(tmp_path: Path, monkeypatch, colour_model: Path) -> None:
    """The second load of the same bytes starts no child; a changed file is probed again."""
    monkeypatch.setenv(model_probe.CACHE_ENV, str(tmp_path / "cache"))
    children: list[Path] = []
    real = model_probe._run_child

    def counting(path: Path, *args) -> dict:
        children.append(path)
        return real(path, *args)

    monkeypatch.setattr(model_probe, "_run_child", counting)
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(colour_model.read_bytes())
    load_model(colour_model, provider="cpu")
    load_model(copy, provider="cpu")  # same bytes, other name: the verdict holds
    assert children == [colour_model]
    verdicts = list((tmp_path / "cache" / "model-checks").glob("*.json"))
    assert len(verdicts) == 1 and json.loads(verdicts[0].read_text())["bounded"] is True

    changed = tmp_path / "changed.onnx"
    changed.write_bytes(onnx_factory.build_model(labels=["a", "b", "c", "d"]).SerializeToString())
    load_model(changed, provider="cpu")
    assert children == [colour_model, changed]
    load_model(changed, provider="cpu", batch_sizes=[16])  # a size not run before: probed again, with it
    assert children == [colour_model, changed, changed]
    load_model(changed, provider="cpu", batch_sizes=[16])
    assert len(children) == 3


def test_the_limits_grow_with_the_file_and_follow_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(model_probe.MEMORY_ENV, raising=False)
    monkeypatch.delenv(model_probe.SECONDS_ENV, raising=False)
    small, vgg = model_probe.ProbeLimits.for_file(511), model_probe.ProbeLimits.for_file(528 * 2**20)
    assert small.memory_bytes < 1.1 * 2**30 and vgg.memory_bytes > 3 * 528 * 2**20
    assert vgg.seconds > small.seconds >= 60
    batch_64 = model_probe.ProbeLimits.for_file(511, largest_batch=64)
    assert batch_64.memory_bytes - small.memory_bytes == 62 * 64 * 2**20 and batch_64.seconds > small.seconds
    monkeypatch.setenv(model_probe.MEMORY_ENV, "300")
    monkeypatch.setenv(model_probe.SECONDS_ENV, "7")
    assert model_probe.ProbeLimits.for_file(511) == model_probe.ProbeLimits(300 * 2**20, 7.0)


def test_a_child_that_dies_is_a_refusal_not_a_crash(tmp_path: Path, monkeypatch, colour_model: Path) -> None:
    """Killed by the kernel, or exiting without a verdict: the model is refused with how it ended."""
    monkeypatch.setenv(model_probe.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(model_probe, "_child_command", lambda *args: [sys.executable, "-c", "import os; os.abort()"])
    with pytest.raises(ModelLoadError, match=r"^colours\.onnx was refused: its test run was ended by signal 6"):
        load_model(colour_model, provider="cpu")
