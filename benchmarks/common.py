"""Shared pieces of the benchmark suite: timing, test images, the model, machine facts.

Nothing here imports TensorFlow: the suite's own process measures ONNX Runtime and the
app, and TensorFlow's thread pools would compete with them. Keras runs in
`benchmarks.keras_worker`, always in a subprocess.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Generated images and the exported model are kept between runs; tests point this elsewhere.
CACHE_ENV_VAR = "CONVNET_BENCHMARKS_CACHE"
CACHE_DIR = Path(os.environ.get(CACHE_ENV_VAR) or ROOT / "benchmarks" / ".cache")
MOBILENET_SIZE = 224
COMPLETE_MARKER = ".complete"


# --- timing -----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values, so a missing measurement never looks like zero."""
    return float(statistics.median(values)) if values else math.nan


def interleaved_timings(
    calls: Mapping[str, Callable[[], object]], rounds: int, runs_per_round: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per call for each named callable, measured in alternating rounds.

    Each round runs every callable `runs_per_round` times, in an order rotated per round,
    so slow drift of the machine (another process, thermal state) spreads over all of
    them instead of favouring whichever ran first. One warm-up call each is not timed.
    """
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]
            for _ in range(runs_per_round):
                started = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - started)
    return times


def cores() -> int:
    """CPU cores this process may run on (the affinity mask, which containers may narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --- memory -----------------------------------------------------------------------------


def parse_vmrss_mb(status_text: str) -> float:
    """VmRSS in MB (10^6 bytes) from the text of /proc/<pid>/status; ValueError if absent."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            value, unit = float(parts[1]), (parts[2] if len(parts) > 2 else "kB").lower()
            scale = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "b": 1}.get(unit)
            if scale is None:
                raise ValueError(f"unknown VmRSS unit {parts[2]!r}")
            return value * scale / 1e6
    raise ValueError("no VmRSS line in the status text")


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB, from /proc (Linux only)."""
    return parse_vmrss_mb(Path(f"/proc/{pid}/status").read_text(encoding="ascii"))


# --- machine ----------------------------------------------------------------------------


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 1)
    except (OSError, ValueError):
        pass
    return None


def os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip().strip(chr(34))} ({platform.system()} {platform.release()})"
    except OSError:
        pass
    return platform.platform()


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on. Versions come from package metadata, so
    TensorFlow is named without being imported into this process."""
    import onnxruntime

    return {
        "cpu": cpu_model(),
        "architecture": platform.machine(),
        "cores": cores(),
        "ram_gb": ram_gb(),
        "os": os_name(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "tensorflow": _package_version("tensorflow"),
        "keras": _package_version("keras"),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


# --- generated photos -------------------------------------------------------------------


def photo_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An RGB image with a photo's statistics: smooth colour fields, some detail, sensor noise.

    Pure noise would make JPEGs several times larger and slower to decode than photos,
    which would overstate decoding's share of the cost.
    """
    coarse = rng.uniform(0, 255, (3, 4, 3)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    detail = rng.uniform(-40, 40, (12, 16, 3)).astype(np.float32)
    field += cv2.resize(detail, (width, height), interpolation=cv2.INTER_CUBIC)
    field += rng.standard_normal((height, width, 3), dtype=np.float32) * 4.0
    return np.clip(field, 0, 255).astype(np.uint8)


def _write_jpeg(folder: Path, index: int, width: int, height: int, seed: int) -> None:
    rgb = photo_like(np.random.default_rng([seed, index]), height, width)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    (folder / f"{index:05d}.jpg").write_bytes(data.tobytes())


def ensure_jpeg_folder(count: int, width: int = 640, height: int = 480, seed: int = 0) -> Path:
    """A cached folder of `count` deterministic photo-like JPEGs (generated once).

    A marker file written last says the folder is complete, so an interrupted generation
    is redone rather than measured with missing images.
    """
    folder = CACHE_DIR / f"jpegs-{width}x{height}-{count}-seed{seed}"
    if (folder / COMPLETE_MARKER).exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    # OpenCV releases the GIL while resizing and encoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=cores()) as pool:
        list(pool.map(lambda i: _write_jpeg(folder, i, width, height, seed), range(count)))
    (folder / COMPLETE_MARKER).write_text(f"{count} images {width}x{height}, seed {seed}\n", encoding="ascii")
    return folder


def jpeg_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg"))


# --- subprocesses -----------------------------------------------------------------------


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for workers: the repository importable, TensorFlow's start-up chatter off."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra or {})
    return env


class WorkerError(RuntimeError):
    """A benchmark subprocess failed; the message holds the end of its stderr."""


def run_json_worker(args: Sequence[str], timeout: float, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run `python ARGS` and return the JSON object on the last line of its stdout."""
    process = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=dict(env or subprocess_env()),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    if process.returncode != 0 or not lines:
        tail = "\n".join((process.stderr or "").strip().splitlines()[-15:])
        raise WorkerError(f"{' '.join(args[:3])} exited with {process.returncode}:\n{tail}")
    return json.loads(lines[-1])


def ensure_mobilenet_model(log: Callable[[str], None] = print) -> Path:
    """The stock MobileNetV2 classifier at 224 as a ConvNet Studio ONNX file, built once.

    Random weights: inference cost does not depend on the values, and this machine may
    have no internet for the ImageNet weights. Built by Keras in a subprocess, so this
    process never imports TensorFlow.
    """
    path = CACHE_DIR / f"mobilenet_v2-{MOBILENET_SIZE}.onnx"
    if path.exists():
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log(f"building {path} (MobileNetV2, random weights; about half a minute) ...")
    run_json_worker(["-m", "benchmarks.keras_worker", "export", "--out", str(path)], timeout=1200)
    return path
