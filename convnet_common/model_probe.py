"""A model's first run happens in a guarded child process, so a hostile file cannot take the machine.

The pre-check (onnx_file.py, graph_limits.py) proves what it can from the file: no control
flow, no constant sizes asking for gigabytes. It cannot judge sizes a graph computes while
it runs (Shape -> Mul -> ConstantOfShape, Resize scales, Pad or OneHot amounts from
arithmetic), nor how long an enormous convolution takes. So before the app,
convnet-classify or `convnet-train evaluate` runs a model file it has not seen, a child
process (model_probe_child.py) opens it and runs every batch shape the caller will use —
1 and 2 as every load does, the folder-run batch the app picks, a batch size the user
asked for — under a memory limit (the child's resident memory, watched from here every
10 ms, plus an address-space limit that makes one giant allocation fail at once) and a
time limit. Over either, the child is killed and ModelProbeError says so; the caller keeps
its current model.

The probe bounds cost, nothing else: a model whose answers break the contract runs within
its limits here and is then refused by the caller's own checks, with their own message.
A verdict is remembered by the file's SHA-256 (same bytes, same graph, same cost) with the
batch sizes it ran, so a model is probed once per machine, not at every start.
The limits scale with the file (a 500 MB VGG16 may use more than a 50 KB LeNet; a 511-byte
file may not use gigabytes) and with the batch sizes asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from convnet_common.atomic import write_text_atomic

PROBE_VERSION = 2  # bump when the probe runs something new: older verdicts are then ignored
MEMORY_ENV = "CONVNET_MODEL_MEMORY_MB"
SECONDS_ENV = "CONVNET_MODEL_PROBE_SECONDS"
CACHE_ENV = "CONVNET_STUDIO_CACHE_DIR"
_BASE_MEMORY = 1024 * 2**20  # Python, numpy and ONNX Runtime themselves, with room for activations
_MEMORY_PER_FILE_BYTE = 4  # the weights as read, as ONNX Runtime's tensors, prepacked, and one spare
_MEMORY_PER_EXTRA_IMAGE = 64 * 2**20  # each image of a batch over 2: a VGG16 at 224 px needs about half
_BASE_SECONDS = 60.0
_SECONDS_PER_FILE_BYTE = 1 / 10e6  # a second more for every 10 MB of weights to read and prepack
_SECONDS_PER_EXTRA_IMAGE = 0.5
ADDRESS_SPACE_SLACK = 4 * 2**30  # threads' stacks and malloc arenas reserve address space they never touch
_POLL_S = 0.01


class ModelProbeError(Exception):
    """The model's test run took too much memory or time, or its process died; one line, naming the file."""


@dataclass(frozen=True)
class ProbeLimits:
    """How much memory (resident bytes) and time the child may take for one model file."""

    memory_bytes: int
    seconds: float

    @classmethod
    def for_file(cls, size: int, largest_batch: int = 2) -> ProbeLimits:
        """The defaults for a file of `size` bytes run at up to `largest_batch` images, or the environment's."""
        extra = max(0, largest_batch - 2)
        memory = _BASE_MEMORY + _MEMORY_PER_FILE_BYTE * size + _MEMORY_PER_EXTRA_IMAGE * extra
        seconds = _BASE_SECONDS + _SECONDS_PER_FILE_BYTE * size + _SECONDS_PER_EXTRA_IMAGE * extra
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


def _read_verdict(path: Path) -> dict | None:
    try:
        if path.stat().st_size > 4096:
            return None
        verdict = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return verdict if isinstance(verdict, dict) and verdict.get("bounded") is True else None


def probe_model(
    path: str | os.PathLike[str], batch_sizes: Iterable[int] = (), measure_throughput: bool = False
) -> dict:
    """Run the model in a guarded child at 1, 2 and `batch_sizes` images; raise ModelProbeError over the limits.

    `measure_throughput` also runs the folder-run batch measurement (convnet_common.
    batch_size) and returns its choice as "throughput_batch". Returns the verdict: at once
    for bytes that passed before with these sizes. Raises OSError if the file cannot be read.
    """
    path = Path(path)
    wanted = sorted({1, 2, *(int(b) for b in batch_sizes if int(b) > 0)})
    verdict_file = _verdict_path(file_digest(path))
    known = _read_verdict(verdict_file)
    if known and set(wanted) <= set(known.get("batch_sizes", ())) and (known.get("measured") or not measure_throughput):
        return known
    if known:  # run what was run before as well, so the new verdict covers both callers
        wanted = sorted({*wanted, *(int(b) for b in known.get("batch_sizes", ()) if isinstance(b, int))})
        measure_throughput = measure_throughput or bool(known.get("measured"))
    limits = ProbeLimits.for_file(path.stat().st_size, max(wanted))
    outcome = _run_child(path, limits, wanted, measure_throughput)
    if outcome.get("bounded") is not True:
        raise ModelProbeError(str(outcome.get("message") or f"{path.name} was refused: its test run failed"))
    outcome.update(batch_sizes=wanted, measured=measure_throughput)
    try:
        verdict_file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(verdict_file, json.dumps(outcome))
    except OSError:
        pass  # a read-only or full cache only costs the next start another probe
    return outcome


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["MALLOC_ARENA_MAX"] = "2"  # fewer reserved arenas: the address-space limit stays meaningful
    return env


def _child_command(path: Path, limits: ProbeLimits, batch_sizes: list[int], measure: bool | str) -> list[str]:
    """`measure` may instead be "float:NxCxHxW": a foreign graph's run on that float input (probe_float_input)."""
    sizes = ",".join(map(str, batch_sizes))
    mode = measure if isinstance(measure, str) else "measure" if measure else "-"
    return [sys.executable, "-m", "convnet_common.model_probe_child", str(path), str(limits.memory_bytes), sizes, mode]


def probe_float_input(path: str | os.PathLike[str], shape: Iterable[int]) -> dict:
    """The guarded first run of a graph that is not a ConvNet Studio model yet (the Adopt
    dialog's preview of a foreign file): one run on zeros of `shape` in the input's float
    type, under the same limits; ModelProbeError over them. Remembered like probe_model."""
    path = Path(path)
    shape = [int(d) for d in shape]
    label = "x".join(map(str, shape))
    verdict_file = _verdict_path(f"{file_digest(path)}-float{label}")
    known = _read_verdict(verdict_file)
    if known:
        return known
    limits = ProbeLimits.for_file(path.stat().st_size, max(2, shape[0]))
    outcome = _run_child(path, limits, [shape[0]], f"float:{label}")
    if outcome.get("bounded") is not True:
        raise ModelProbeError(str(outcome.get("message") or f"{path.name} was refused: its test run failed"))
    try:
        verdict_file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(verdict_file, json.dumps(outcome))
    except OSError:
        pass
    return outcome


def _run_child(path: Path, limits: ProbeLimits, batch_sizes: list[int], measure: bool | str) -> dict:
    child = subprocess.Popen(
        _child_command(path, limits, batch_sizes, measure),
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
            if outcome.get("over_memory"):
                return _refuse(child, path, f"its test run needed more than {megabytes(limits.memory_bytes)} of memory")
            return outcome
    if child.returncode and child.returncode < 0:
        how = f"was ended by signal {-child.returncode}"
    else:
        how = f"ended with exit code {child.returncode}"
    limit = megabytes(limits.memory_bytes)
    return {"bounded": False, "message": f"{path.name} was refused: its test run {how} (over {limit} of memory?)"}


def _refuse(child: subprocess.Popen, path: Path, message: str) -> dict:
    if child.poll() is None:
        child.kill()
    return {"bounded": False, "message": f"{path.name} was refused: {message}"}


def megabytes(count: int) -> str:
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"


def _resident_bytes(pid: int) -> int:
    """The child's resident memory from /proc (Linux); 0 where there is none (time limit only)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0
