"""The benchmark suite: its pure helpers, the GPU code on the CPU provider, and a quick run end to end.

The quick run uses tiny sizes and the bundled LeNet-5, and skips everything that runs
TensorFlow, so it checks that every section runs and reports, not how fast anything is.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import gpu
from benchmarks.common import CACHE_ENV_VAR, interleaved_timings, parse_vmrss_mb, photo_like
from benchmarks.folder import keras_target_reason, machine_limit, parse_reported_rate
from benchmarks.report import Row, Section, at_least, at_most, render_document, render_summary, render_table
from benchmarks.startup import flatness

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "exported_models" / "digits-lenet5.onnx"
SECTION_HEADINGS = [
    "## 1. Single image",
    "## 2. Folder of photos",
    "## 3. Start-up and memory",
    "## 4. Training: feature cache",
    "## 5. GPU (CUDA)",
    "## 6. GPU training (TensorFlow)",
    "## 7. Ways tried",
]


# --- pure helpers ---------------------------------------------------------------------------


def test_machine_limit_adds_compute_time_and_decode_time_spread_over_cores():
    # 100 images/s of compute = 10 ms per image; 10 ms of decode over 2 cores = 5 ms.
    assert machine_limit(100.0, 0.010, 2) == pytest.approx(1 / 0.015)
    assert machine_limit(100.0, 0.0, 4) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        machine_limit(0.0, 0.01, 2)


def test_reported_rate_is_read_from_the_cli_summary_line():
    stderr = (
        "convnet-classify: note: something\n"
        "classified 1000 images, 0 failed, model m.onnx, provider CPUExecutionProvider, "
        "in 4.81 s (207.9 images/s)\n"
    )
    assert parse_reported_rate(stderr) == pytest.approx(207.9)
    assert parse_reported_rate("classified 3 images, 0 failed, model m.onnx, provider CPUExecutionProvider") is None


def test_vmrss_is_parsed_in_megabytes():
    status = "Name:\tpython\nVmPeak:\t  900000 kB\nVmRSS:\t  204800 kB\nThreads:\t4\n"
    assert parse_vmrss_mb(status) == pytest.approx(204800 * 1024 / 1e6)
    with pytest.raises(ValueError):
        parse_vmrss_mb("Name:\tpython\n")


def test_flatness_rule_accepts_small_growth_in_mb_or_percent():
    flat_by_mb = flatness([(1000, 300.0), (5000, 310.0), (10000, 318.0)])
    assert flat_by_mb["flat"] and flat_by_mb["growth_mb"] == pytest.approx(18.0)
    assert flat_by_mb["growth_mb_per_1000_images"] == pytest.approx(2.0)
    assert flatness([(1000, 1000.0), (10000, 1090.0)])["flat"]  # 90 MB but 9 %
    growing = flatness([(1000, 200.0), (10000, 260.0)])  # 60 MB and 30 %
    assert not growing["flat"] and growing["growth_percent"] == pytest.approx(30.0)


def test_table_rendering_shows_targets_and_escapes_cells():
    rows = [
        Row("plain", "1 ms"),
        at_most("a ÷ b", 1.2, "1.2×", 1.3, "1.3×"),
        at_least("c | d", 2.0, "2×", 3.5, "3.5×"),
        at_least("unmeasured", math.nan, "n/a", 1.0, "1×"),
    ]
    assert render_table(rows).splitlines() == [
        "| measure | value | target | met? |",
        "|---|---|---|---|",
        "| plain | 1 ms | — | — |",
        "| a ÷ b | 1.2× | ≤ 1.3× | yes |",
        "| c \\| d | 2× | ≥ 3.5× | **no** |",
        "| unmeasured | n/a | ≥ 1× | **no** |",
    ]


def test_document_has_machine_targets_and_skipped_sections():
    sections = [
        Section("a", "First", "How it was measured.", [at_most("t", 1.0, "1 s", 2.0, "2 s")]),
        Section("b", "Second", "How.", status="skipped", reason="no GPU here"),
    ]
    text = render_document({"cpu": "Test CPU", "cores": 2}, sections, "run it")
    assert "| CPU | Test CPU |" in text and "## 1. First" in text and "## 2. Second" in text
    assert "**Not run:** no GPU here" in text
    assert "| 1. First | t | 1 s | ≤ 2 s | yes |" in text  # the summary of targets


def test_interleaved_timings_time_every_call_equally_after_a_warm_up():
    calls: list[str] = []
    times = interleaved_timings({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, 2)
    assert {name: len(values) for name, values in times.items()} == {"a": 6, "b": 6}
    assert calls[:2] == ["a", "b"] and calls.count("a") == 7  # one untimed warm-up each
    assert calls[2:6] == ["a", "a", "b", "b"] and calls[6:10] == ["b", "b", "a", "a"]  # rotated per round


def test_generated_photos_are_deterministic():
    first = photo_like(np.random.default_rng([0, 7]), 48, 64)
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(first, photo_like(np.random.default_rng([0, 7]), 48, 64))
    assert first.std() > 10  # colour fields, not a flat image


# --- GPU code, exercised on the CPU provider ------------------------------------------------


def test_gpu_measurements_run_on_the_cpu_provider():
    result = gpu.measure(LENET, provider=gpu.CPU, device="cpu", batches=(1, 4), compare_batch=4, min_seconds=0.02)
    rates = [
        result["fp32_images_per_s"],
        result["iobinding_images_per_s"],
        result["cpu_fp32_images_per_s"],
        *result["sweep_images_per_s"].values(),
    ]
    assert all(math.isfinite(r) and r > 0 for r in rates)
    assert result["provider_in_use"] == gpu.CPU and result["best_batch"] in (1, 4)
    assert "fp16_images_per_s" in result or "fp16_error" in result
    rows, notes = gpu.rows(result)
    assert any("I/O binding" in row.measure for row in rows) and notes


def test_cuda_status_is_a_plain_answer():
    status = gpu.cuda_status(LENET)
    assert isinstance(status["usable"], bool) and status["providers_listed"]
    assert status["usable"] or status["reason"]


# --- the whole suite, quick ---------------------------------------------------------------


def _positive_finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_suite_runs_every_section_and_writes_both_files(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, **{CACHE_ENV_VAR: str(tmp_path / "cache")})
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "--quick",
        "--out-dir",
        str(out),
        "--model",
        str(LENET),
        "--skip-keras",
    ]
    process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]

    markdown = (out / "benchmarks.md").read_text(encoding="utf-8")
    for heading in ["## How to rerun", "## Machine", "## Targets", *SECTION_HEADINGS]:
        assert heading in markdown, heading
    assert "| measure | value | target | met? |" in markdown
    data = json.loads((out / "benchmarks.json").read_text(encoding="utf-8"))
    assert data["quick"] is True and data["machine"]["cores"] >= 1
    sections = data["sections"]
    assert [sections[k]["status"] for k in ("single", "folder", "startup", "training", "ways")] == [
        "ran",
        "ran",
        "ran",
        "skipped",
        "ran",
    ]
    assert sections["gpu"]["status"] in ("ran", "skipped")
    assert sections["gpu_training"]["status"] == "skipped"  # --skip-keras: nothing imports TensorFlow
    single, folder, startup = (sections[k]["result"] for k in ("single", "folder", "startup"))
    for value in (
        single["app_s"],
        single["raw_run_s"],
        single["decode_s"],
        single["app_over_floor"],
        folder["cli_images_per_s"],
        folder["best_compute_images_per_s"],
        folder["decode_s"],
        folder["machine_limit_images_per_s"],
        folder["cli_over_limit"],
        startup["memory"]["first_rss_mb"],
        startup["memory"]["last_rss_mb"],
    ):
        assert _positive_finite(value), value
    ways = sections["ways"]["result"]
    assert set(ways["folder_images_per_s"]) >= {"shipped engine", "one worker", "full-size JPEG decode"}
    assert all(
        _positive_finite(v)
        for v in [
            *ways["folder_images_per_s"].values(),
            ways["inference_ms_all"],
            ways["session_create_s"],
            ways["session_create_from_cache_s"],
        ]
    )
    for start in startup["startup"].values():
        assert _positive_finite(start["ready_wall_s"]) and _positive_finite(start["rss_mb"])

    # --only reruns one section and keeps the others' numbers from the run before.
    again = subprocess.run(command + ["--only", "gpu"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    kept = json.loads((out / "benchmarks.json").read_text(encoding="utf-8"))["sections"]
    assert kept["folder"]["from_earlier_run"] and kept["folder"]["result"] == folder
    markdown = (out / "benchmarks.md").read_text(encoding="utf-8")
    assert "not rerun this time" in markdown

    # --render-only rebuilds the same Markdown from the JSON, measuring nothing.
    (out / "benchmarks.md").unlink()
    rendered = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--render-only", "--out-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert (out / "benchmarks.md").read_text(encoding="utf-8") == markdown


def test_a_missed_keras_target_says_why_only_when_the_machine_cannot_reach_it():
    reachable = {
        "keras_images_per_s": 50.0,
        "machine_limit_images_per_s": 212.0,
        "best_compute_images_per_s": 237.0,
        "cli_over_limit": 0.95,
        "keras_first_call_images_per_s": 40.0,
    }
    assert keras_target_reason(reachable) == ""  # 3.5 × 50 = 175 < 212: a miss would be the pipeline's fault
    out_of_reach = dict(reachable, keras_images_per_s=141.0)
    reason = keras_target_reason(out_of_reach)
    assert "494 images/s" in reason and "212 images/s" in reason and "1.5×" in reason

    row = at_least("convnet-classify ÷ Keras", 1.5, "1.5×", 3.5, "3.5×")
    row.why = reason
    summary = render_summary([Section("folder", "Folder", "how", [row])])
    assert "not met:** " + reason in summary


def test_missed_single_image_and_limit_targets_explain_themselves_from_the_numbers():
    from benchmarks import folder, single_image

    single = {
        "keras_s": 0.0635,
        "app_around_keras_s": 0.0074,
        "raw_run_s": 0.0049,
        "decode_s": 0.0018,
        "app_over_floor": 1.1,
    }
    reason = single_image.keras_target_reason(single)
    assert "6.35 ms" in reason and "no app path could reach it" in reason
    faster_floor = dict(single, raw_run_s=0.003, decode_s=0.001)
    assert "no app path" not in single_image.keras_target_reason(faster_floor)
    limit = folder.limit_target_reason(
        {"cores": 2, "cli_images_per_s": 200.0, "best_compute_images_per_s": 250.0, "decode_s": 0.001}
    )
    assert "10 ms of core time" in limit and "9 ms for inference and decoding" in limit
