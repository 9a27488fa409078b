"""A model's first run happens in a guarded child process, so a hostile file cannot take the machine.

The pre-check (convnet_common/onnx_file.py, graph_limits.py) proves what it can from the
file: no control flow, no constant sizes asking for gigabytes. It cannot judge sizes a
graph computes while it runs (Shape -> Mul -> ConstantOfShape, Resize scales, Pad or
OneHot amounts from arithmetic), nor how long an enormous convolution takes. So before
the app or convnet-classify opens a model it has not seen, a child process loads it and
runs every batch shape the app will later run (1 and 2 at load, the folder-run batch
that `throughput_batch_size` picks), under a memory limit (the child's resident memory,
watched from here every few milliseconds, plus an address-space limit that makes one
giant allocation fail at once) and a time limit. Over either, the child is killed and
the model refused with a message; the caller keeps its current model.

A verdict is remembered by the file's SHA-256 (same bytes, same graph, same answer), so a
model is probed once per machine, not at every start. The limits scale with the file:
a 500 MB VGG16 may use more than a 50 KB LeNet, a 511-byte file may not use gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from convnet_common.atomic import write_text_atomic
from desktop.core.model_metadata import ModelLoadError

PROBE_VERSION = 1  # bump when the probe runs something new: old verdicts are then ignored
MEMORY_ENV = "CONVNET_MODEL_MEMORY_MB"
SECONDS_ENV = "CONVNET_MODEL_PROBE_SECONDS"
CACHE_ENV = "CONVNET_STUDIO_CACHE_DIR"
_BASE_MEMORY = 1024 * 2**20  # Python, numpy and ONNX Runtime themselves, with room for the activations
_MEMORY_PER_FILE_BYTE = 4  # the weights as read, as ONNX Runtime's tensors, prepacked, and one spare
_BASE_SECONDS = 60.0
_SECONDS_PER_FILE_BYTE = 1 / 10e6  # a second more for every 10 MB of weights to read and prepack
ADDRESS_SPACE_SLACK = 4 * 2**30  # threads' stacks and malloc arenas reserve address space they never touch
_POLL_S = 0.01


@dataclass(frozen=True)
class ProbeLimits:
    """How much memory (resident bytes) and time the child may take for one model file."""

    memory_bytes: int
    seconds: float

    @classmethod
    def for_file(cls, size: int) -> ProbeLimits:
        """The defaults for a file of `size` bytes, or the environment's overrides."""
        memory = _BASE_MEMORY + _MEMORY_PER_FILE_BYTE * size
        seconds = _BASE_SECONDS + _SECONDS_PER_FILE_BYTE * size
        if os.environ.get(MEMORY_ENV, "").strip():
            memory = int(float(os.environ[MEMORY_ENV]) * 2**20)
        if os.environ.get(SECONDS_ENV, "").strip():
            seconds = float(os.environ[SECONDS_ENV])
        return cls(memory, seconds)


def cache_dir() -> Path:
    """Where verdicts are kept: $CONVNET_STUDIO_CACHE_DIR, else the user's cache folder."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.environ.get("LOCALAPPDATA", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "convnet-studio"


def file_digest(path: Path) -> str:
    """SHA-256 of the file, read in 1 MB pieces (a VGG16 is 500 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def _verdict_path(digest: str) -> Path:
    import onnxruntime as ort  # the verdict belongs to the runtime that produced it

    return cache_dir() / "model-checks" / f"{digest}-ort{ort.__version__}-v{PROBE_VERSION}.json"


def probe_model(path: Path) -> None:
    """Run the model once in a guarded child; raise ModelLoadError if it needs too much or fails.

    Returns at once for a file whose bytes passed before. Every message starts with the
    file's name, as load_model's own refusals do (the child's are passed on as they are).
    """
    try:
        verdict = _verdict_path(file_digest(path))
        if verdict.is_file():
            return
    except OSError as error:
        raise ModelLoadError(f"{path.name}: cannot be read ({error.strerror or error})") from None
    limits = ProbeLimits.for_file(path.stat().st_size)
    outcome = _run_child(path, limits)
    if outcome.get("ok") is not True:
        raise ModelLoadError(str(outcome.get("message") or f"{path.name}: its test run failed"))
    try:
        verdict.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(verdict, json.dumps({"ok": True, "peak_bytes": outcome.get("peak_bytes")}))
    except OSError:
        pass  # a read-only or full cache only costs the next start another probe


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["MALLOC_ARENA_MAX"] = "2"  # fewer reserved arenas: the address-space limit stays meaningful
    return env


def _child_command(path: Path, limits: ProbeLimits) -> list[str]:
    return [sys.executable, "-m", "desktop.core.model_probe_child", str(path), str(limits.memory_bytes)]


def _run_child(path: Path, limits: ProbeLimits) -> dict:
    child = subprocess.Popen(
        _child_command(path, limits),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_child_env(),
    )
    started = time.monotonic()
    try:
        while child.poll() is None:
            if _resident_bytes(child.pid) > limits.memory_bytes:
                return _refuse(child, path, f"its test run needed more than {megabytes(limits.memory_bytes)} of memory")
            if time.monotonic() - started > limits.seconds:
                return _refuse(child, path, f"its test run took longer than {limits.seconds:.0f} s")
            time.sleep(_POLL_S)
        output = child.stdout.read().decode("utf-8", "replace") if child.stdout else ""
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stdout:
            child.stdout.close()
    for line in reversed(output.splitlines()):
        try:
            outcome = json.loads(line)
        except ValueError:
            continue
        if isinstance(outcome, dict):
            return outcome
    if child.returncode and child.returncode < 0:
        how = f"was ended by signal {-child.returncode}"
    else:
        how = f"ended with exit code {child.returncode}"
    # A MemoryError or a failed allocation under the address-space limit ends here too.
    limit = megabytes(limits.memory_bytes)
    return {"ok": False, "message": f"{path.name} was refused: its test run {how} (over {limit} of memory?)"}


def _refuse(child: subprocess.Popen, path: Path, message: str) -> dict:
    child.kill()
    return {"ok": False, "message": f"{path.name} was refused: {message}"}


def megabytes(count: int) -> str:
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"


def _resident_bytes(pid: int) -> int:
    """The child's resident memory from /proc (Linux); 0 where there is none (time limit only)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0
