"""Section 6: training on a GPU (TensorFlow), wherever TensorFlow sees one.

Its own section because TensorFlow and ONNX Runtime need different CUDA versions: a
machine can train on its GPU while ONNX Runtime's CUDA provider is unusable, or the other
way round. The worker (`benchmarks/bench_gpu_training.py`) imports TensorFlow in its own
process, as every TensorFlow benchmark here does.
"""

from __future__ import annotations

from typing import Any

from benchmarks.bench_gpu_training import STAGES, VARIANTS
from benchmarks.common import run_json_worker
from benchmarks.report import Row, rate, ratio, seconds

TITLE = "GPU training (TensorFlow)"
METHOD = """\
Runs where TensorFlow sees a GPU (`benchmarks/bench_gpu_training.py`, in its own process).
MobileNetV2 at 224 px, batch 64, random weights and random uint8 batches already in
memory, so the rates are the training steps' alone; both stages as convnet-train runs
them (the head on a frozen base; fine-tuning the top quarter). Four variants, each
compiled afresh: float32, float32 with XLA, mixed precision (`mixed_float16`), and mixed
precision with XLA, which is what convnet-train uses on a GPU with tensor cores
(`--mixed-precision auto` and Keras's `jit_compile="auto"`). The warm-up (tracing, XLA
compilation, cuDNN autotuning) is shown apart. No target is set until the section has
run on a GPU: none was lent to the sessions that wrote it."""
NAMES = {
    "float32": "float32",
    "float32_xla": "float32 + XLA",
    "mixed": "mixed precision",
    "mixed_xla": "mixed precision + XLA (convnet-train's choice)",
}
STAGE_NAMES = {"frozen": "head on a frozen base", "fine_tune": "fine-tuning"}


class NoGpu(Exception):
    """TensorFlow sees no GPU here: the suite skips the section with this reason."""


def measure(size: int = 224, batch: int = 64, steps: int = 20, device: str = "gpu") -> dict[str, Any]:
    args = ["-m", "benchmarks.bench_gpu_training", "--size", str(size), "--batch", str(batch), "--steps", str(steps)]
    result = run_json_worker([*args, "--device", device], timeout=3600)
    if "skipped" in result:
        raise NoGpu(result["skipped"])
    return result


def rows(result: dict[str, Any]) -> tuple[list[Row], list[str]]:
    table = []
    for stage in [stage for stage in STAGES if stage in result]:
        stage_name = STAGE_NAMES[stage]
        for name in VARIANTS:
            entry = result[stage][name]
            table.append(
                Row(
                    f"{stage_name}: {NAMES[name]}",
                    f"{rate(entry['images_per_s'])} (warm-up {seconds(entry['warm_up_s'])})",
                )
            )
        for name, value in result[stage]["speedups"].items():
            table.append(Row(f"{stage_name}: {NAMES[name]} ÷ float32", ratio(value)))
    gpus = ", ".join(result.get("gpus") or []) or f"none ({result.get('device', '?')} run)"
    notes = [
        f"{result['size']} px, batch {result['batch']}, {result['steps']} timed steps per variant; device: {gpus}."
    ]
    return table, notes
