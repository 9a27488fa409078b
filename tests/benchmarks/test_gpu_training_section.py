"""The GPU training section: its worker runs the same code on the CPU (tiny sizes), says
why it skips where TensorFlow sees no GPU, and its rows render every stage and variant."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import gpu_training
from benchmarks.bench_gpu_training import STAGES, VARIANTS
from benchmarks.common import ROOT, subprocess_env


def _worker(*args: str) -> dict:
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_gpu_training", *args],
        cwd=ROOT,
        env=dict(subprocess_env()),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_worker_measures_every_variant_on_the_cpu() -> None:
    """The fine-tuning stage only: XLA compiles each variant's step for most of a minute on
    this CPU, and the frozen stage is the same code with another stage number."""
    result = _worker("--device", "cpu", "--size", "32", "--batch", "4", "--steps", "1", "--stages", "fine_tune")
    assert "frozen" not in result
    for stage in ["fine_tune"]:
        assert set(result[stage]) == {*VARIANTS, "speedups"}
        for name in VARIANTS:
            assert result[stage][name]["images_per_s"] > 0 and result[stage][name]["warm_up_s"] > 0
        assert result[stage]["speedups"]["mixed_xla"] == pytest.approx(
            result[stage]["mixed_xla"]["images_per_s"] / result[stage]["float32"]["images_per_s"]
        )
    table, notes = gpu_training.rows(result)
    assert len(table) == 2 * len(VARIANTS) - 1
    assert "mixed precision + XLA (convnet-train's choice) ÷ float32" in " ".join(row.measure for row in table)
    assert "device: none (cpu run)" in notes[0]


def test_the_worker_skips_with_the_reason_where_tensorflow_sees_no_gpu(monkeypatch) -> None:
    """On a machine without a GPU (this suite's) the worker measures nothing and says why,
    and the section is skipped with that reason; on one with a GPU it measures there."""
    result = _worker("--size", "32", "--batch", "2", "--steps", "1")
    if "skipped" in result:
        assert result == {"skipped": "TensorFlow sees no GPU on this machine"}
        monkeypatch.setattr(gpu_training, "run_json_worker", lambda args, timeout: result)
        with pytest.raises(gpu_training.NoGpu, match="TensorFlow sees no GPU"):
            gpu_training.measure()
    else:
        assert result["device"] == "gpu" and result["gpus"], result
        assert all(result[stage][name]["images_per_s"] > 0 for stage in STAGES for name in VARIANTS)
