"""Section 3: start-up time and memory of the app, and memory over a very large batch.

Start-up: `python -m desktop.app [MODEL] --exit-when-ready` on Qt's offscreen platform,
with a throwaway home and config folder so saved settings (window state, recent
models) cannot change what starts. The time counted is the benchmark's wall clock from
launching the process to reading the app's ready line (the window shown, the model
loaded); the app's own figure, from the kernel's process start time, is kept beside it.

Memory: `benchmarks.memory_worker` classifies a folder with `run_batch` in its own
process, keeping every result as the Batch tab does, and samples VmRSS along the way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, median, run_json_worker, subprocess_env
from benchmarks.report import Row, at_most, megabytes, seconds

READY_TARGET_S = 1.5
RSS_TARGET_MB = 400.0
FLAT_PERCENT = 10.0  # growth from the first sample to the last of at most 10 % ...
FLAT_MB = 20.0  # ... or at most 20 MB counts as flat
START_TIMEOUT_S = 120.0


def app_environment(home: Path) -> dict[str, str]:
    """Offscreen Qt and a fresh home: no saved window state or recent model is picked up."""
    env = subprocess_env(
        {
            "QT_QPA_PLATFORM": "offscreen",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "CONVNET_STUDIO_CONFIG_DIR": str(home / ".config" / "convnet-studio"),
        }
    )
    env.pop("CONVNET_STUDIO_MODEL", None)  # the bundled model must be the bundled one
    return env


def start_once(model: Path | None) -> dict[str, Any]:
    """Start the app once; wall seconds to its ready line, and what the line says."""
    command = [sys.executable, "-m", "desktop.app", *([str(model)] if model else []), "--exit-when-ready"]
    with tempfile.TemporaryDirectory(prefix="convnet-bench-home-") as home, tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=ROOT, env=app_environment(Path(home)), stdout=subprocess.PIPE, stderr=errors, text=True
        )
        watchdog = threading.Timer(START_TIMEOUT_S, process.kill)  # a hung start must not hang the suite
        watchdog.start()
        try:
            report, wall = None, None
            for line in process.stdout:
                if line.lstrip().startswith("{"):
                    wall = time.perf_counter() - started
                    report = json.loads(line)
                    break
            process.stdout.read()
            status = process.wait()
        finally:
            watchdog.cancel()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    if report is None or "error" in report or status != 0:
        reason = (report or {}).get("error") or stderr.strip()[-400:] or f"exit status {status}"
        raise RuntimeError(f"the app did not start: {reason}")
    return {
        "wall_s": wall,
        "app_ready_s": report.get("ready_s"),
        "rss_mb": report.get("rss_mb"),
        "provider": report.get("provider"),
        "model": report.get("model"),
    }


def measure_startup(models: dict[str, Path | None], runs: int) -> dict[str, Any]:
    """Start the app `runs` times per model, alternating models; medians per model."""
    starts: dict[str, list[dict[str, Any]]] = {label: [] for label in models}
    for _ in range(runs):
        for label, model in models.items():
            starts[label].append(start_once(model))
    result: dict[str, Any] = {}
    for label, runs_of in starts.items():
        app_ready = [run["app_ready_s"] for run in runs_of if run["app_ready_s"] is not None]
        result[label] = {
            "model": runs_of[0]["model"],
            "provider": runs_of[0]["provider"],
            "runs": len(runs_of),
            "ready_wall_s": median([run["wall_s"] for run in runs_of]),
            "ready_since_process_start_s": median(app_ready) if app_ready else None,
            "rss_mb": median([run["rss_mb"] for run in runs_of]),
            "each": runs_of,
        }
    return result


def flatness(samples: list[tuple[int, float]]) -> dict[str, Any]:
    """Growth between the first and last RSS samples, per 1,000 images, and the flat verdict.

    Flat means: growth ≤ FLAT_PERCENT % of the first sample, or ≤ FLAT_MB MB. The first
    sample, not the start, is the base: by then the model, thread pools and caches exist.
    """
    if len(samples) < 2:
        raise ValueError("need at least two memory samples")
    (first_images, first_mb), (last_images, last_mb) = samples[0], samples[-1]
    growth = last_mb - first_mb
    percent = 100.0 * growth / first_mb
    return {
        "first_images": first_images,
        "first_rss_mb": first_mb,
        "last_images": last_images,
        "last_rss_mb": last_mb,
        "growth_mb": growth,
        "growth_percent": percent,
        "growth_mb_per_1000_images": growth / (last_images - first_images) * 1000.0,
        "flat": growth <= FLAT_MB or percent <= FLAT_PERCENT,
    }


def measure_memory(model_path: Path, folder: Path, every: int) -> dict[str, Any]:
    """Run the memory worker over `folder` and judge whether its RSS stayed flat."""
    worker = run_json_worker(
        ["-m", "benchmarks.memory_worker", "--model", str(model_path), "--folder", str(folder), "--every", str(every)],
        timeout=7200,
    )
    samples = [(int(images), float(mb)) for images, mb in worker["samples"]]
    return {**worker, "samples": samples, **flatness(samples)}


def measure(
    model_path: Path, runs: int, memory_folder: Path | None, every: int, image_size: tuple[int, int]
) -> dict[str, Any]:
    """Start-up with the benchmark model and with the app's default; then the memory run."""
    models = {"benchmark model": model_path, "bundled default (no argument)": None}
    result: dict[str, Any] = {"startup": measure_startup(models, runs)}
    if memory_folder is not None:
        result["memory"] = measure_memory(model_path, memory_folder, every)
        result["memory"]["image_size"] = list(image_size)
        result["memory"]["model"] = model_path.name
    return result


TITLE = "Start-up and memory"
METHOD = """\
**Start-up**: `python -m desktop.app [MODEL] --exit-when-ready` with `QT_QPA_PLATFORM=offscreen`
and a throwaway home and config folder; the time is the suite's wall clock from launching
the process to the app's ready line (window shown, model loaded, one more event-loop
turn), the app's own count from the kernel's process start time beside it. RSS is VmRSS
at that moment. Starts alternate between the two models; medians. **Memory**: a
subprocess runs `run_batch` over generated JPEGs, keeping every `BatchResult` in a list
as the Batch tab does, and samples VmRSS each time another block of images is done.
Flat means the growth from the first sample to the last is at most 10 % of the first
sample or at most 20 MB. MB here is 10^6 bytes."""


def rows(result: dict[str, Any]) -> tuple[list[Row], list[str]]:
    table: list[Row] = []
    notes: list[str] = []
    for label, start in result["startup"].items():
        name = f"{start['model']}, {label}"
        wall, rss = start["ready_wall_s"], start["rss_mb"]
        if label == "benchmark model":
            table += [
                at_most(f"ready: {name}", wall, seconds(wall), READY_TARGET_S, seconds(READY_TARGET_S)),
                Row(
                    f"ready as the app counts it (since process start): {name}",
                    seconds(start["ready_since_process_start_s"]),
                ),
                at_most(f"RSS when ready: {name}", rss, megabytes(rss), RSS_TARGET_MB, megabytes(RSS_TARGET_MB)),
            ]
        else:
            table += [
                Row(f"ready: {name}", seconds(wall)),
                Row(
                    f"ready as the app counts it (since process start): {name}",
                    seconds(start["ready_since_process_start_s"]),
                ),
                Row(f"RSS when ready: {name}", megabytes(rss)),
            ]
    runs = {start["runs"] for start in result["startup"].values()}
    providers = sorted({str(start["provider"]) for start in result["startup"].values()})
    notes.append(f"{'/'.join(map(str, sorted(runs)))} start(s) per model; provider {', '.join(providers)}.")
    memory = result.get("memory")
    if memory:
        width, height = memory["image_size"][1], memory["image_size"][0]
        table += [
            Row(f"RSS after {memory['first_images']:,} images", megabytes(memory["first_rss_mb"])),
            Row(f"RSS after {memory['last_images']:,} images", megabytes(memory["last_rss_mb"])),
            Row("growth per 1,000 images", f"{memory['growth_mb_per_1000_images']:+.1f} MB"),
            Row(
                f"flat from {memory['first_images']:,} to {memory['last_images']:,} images",
                f"{memory['growth_mb']:+.1f} MB ({memory['growth_percent']:+.1f} %)",
                f"≤ {FLAT_PERCENT:g} % or ≤ {FLAT_MB:g} MB",
                bool(memory["flat"]),
            ),
        ]
        notes.append(
            f"Memory run: {memory['images']:,} generated {width}×{height} JPEGs (smaller than the photos "
            f"above to keep generation quick; results hold no pixels, so the image size changes the "
            f"decode buffers, not what accumulates), model {memory['model']}, RSS after loading the model "
            f"{megabytes(memory['rss_after_load_mb'])}, {memory['failed']} failed, "
            f"{seconds(memory['seconds'])} in all."
        )
    else:
        notes.append("Memory run not done in this run.")
    return table, notes
