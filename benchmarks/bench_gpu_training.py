"""Training steps on a GPU: float32 against mixed precision, with and without XLA.

What `convnet-train` chooses on a GPU (training.mixed_precision: `mixed_float16` where the
GPU has tensor cores; Keras's `jit_compile="auto"`: XLA on a GPU) against plain float32
steps, for both stages: the head on a frozen base, and fine-tuning the top quarter of the
base. MobileNetV2 with random weights (the cost does not depend on the values) on random
uint8 batches already in memory, so the rates are the steps', not the input pipeline's.
Each variant is compiled afresh, warmed up (tracing and XLA compilation are reported
apart) and timed over `--steps` steps.

    .venv/bin/python -m benchmarks.bench_gpu_training [--size 224] [--batch 64] [--steps 20]

Prints one JSON object, last. Without a GPU visible to TensorFlow it prints
{"skipped": reason} unless `--device cpu` asks to run the same code on the CPU (the
suite's test does, at tiny sizes).
"""

from __future__ import annotations

import argparse
import json
import time

VARIANTS = {  # name: (dtype policy, jit_compile)
    "float32": ("float32", False),
    "float32_xla": ("float32", True),
    "mixed": ("mixed_float16", False),
    "mixed_xla": ("mixed_float16", True),
}
STAGES = ("frozen", "fine_tune")


def gpu_names() -> list[str]:
    from training.mixed_precision import tensorflow_gpus

    return [f"{name} (compute capability {capability})" for name, capability in tensorflow_gpus()]


def step_rate(stage: str, policy: str, jit: bool, size: int, batch: int, steps: int, device: str) -> dict:
    """Images/s of train_on_batch for one stage and variant, and the warm-up's seconds."""
    import keras
    import numpy as np
    import tensorflow as tf

    from training import registry
    from training.model_builder import build_classifier, set_trainable_for_stage

    keras.config.set_dtype_policy(policy)
    try:
        with tf.device(f"/{device.upper()}:0"):
            keras.utils.set_random_seed(0)
            classifier = build_classifier(registry.get_backbone("mobilenet_v2"), 4, size, None, freeze_base=True)
            set_trainable_for_stage(classifier, True, 2 if stage == "fine_tune" else 1, "0.25")
            classifier.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=jit)
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, (batch, size, size, 3)).astype("float32")
            labels = keras.utils.to_categorical(rng.integers(0, 4, batch), 4)
            started = time.perf_counter()
            for _ in range(2):  # tracing, XLA compilation, cuDNN autotuning
                classifier.train_on_batch(images, labels)
            warm_up = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(steps):
                loss = classifier.train_on_batch(images, labels)
            float(np.asarray(loss))  # the last step has finished
            elapsed = time.perf_counter() - started
    finally:
        keras.config.set_dtype_policy("float32")
    return {"images_per_s": steps * batch / elapsed, "warm_up_s": warm_up}


def measure(size: int, batch: int, steps: int, device: str, stages=STAGES) -> dict:
    results: dict = {"size": size, "batch": batch, "steps": steps, "device": device, "gpus": gpu_names()}
    for stage in stages:
        results[stage] = {
            name: step_rate(stage, policy, jit, size, batch, steps, device) for name, (policy, jit) in VARIANTS.items()
        }
        rates = {name: value["images_per_s"] for name, value in results[stage].items()}
        results[stage]["speedups"] = {name: rates[name] / rates["float32"] for name in VARIANTS if name != "float32"}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, from {', '.join(STAGES)}")
    args = parser.parse_args(argv)
    from training.tf_runtime import load_tensorflow

    load_tensorflow()
    if args.device == "gpu" and not gpu_names():
        print(json.dumps({"skipped": "TensorFlow sees no GPU on this machine"}))
        return 0
    stages = [stage for stage in args.stages.split(",") if stage]
    if not stages or set(stages) - set(STAGES):
        parser.error(f"--stages: choose from {', '.join(STAGES)}")
    print(json.dumps(measure(args.size, args.batch, args.steps, args.device, stages)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
