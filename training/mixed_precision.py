"""Mixed precision on a GPU: float16 arithmetic, float32 weights (Keras's `mixed_float16`).

On a GPU with tensor cores (compute capability 7.0 and up) float16 convolutions and
matrix products run several times as fast as float32 ones and halve the activations'
memory; Keras keeps the weights in float32, scales the loss against underflow
(LossScaleOptimizer, added by `compile`) and this project's probabilities layer computes
its softmax in float32. On a CPU, float16 is slower than float32, so `--mixed-precision
auto` (the default) turns it on only where TensorFlow sees such a GPU; `on` forces it
(useful to test a run's mixed-precision path anywhere), `off` never.

XLA needs nothing here: Keras compiles with `jit_compile="auto"`, which is XLA on a GPU
(outside tf.distribute) and off on a CPU, where it measured 4-7x slower for these steps.

Everything a run leaves behind is float32: the weights already are, and a classifier
built under the mixed policy is rebuilt with float32 layers (`as_float32`) before it is
scored for the report, exported to ONNX or evaluated, so the ONNX file and the numbers in
the report do not depend on the GPU the run trained on.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys

import keras

from training.config import MIXED_PRECISION_MODES

MODES = MIXED_PRECISION_MODES
MIXED = "mixed_float16"
# Tensor cores arrived with Volta (7.0); Keras warns that older GPUs gain nothing.
MIN_COMPUTE_CAPABILITY = (7, 0)


def tensorflow_gpus() -> list[tuple[str, tuple[int, int]]]:
    """(name, compute capability) of each GPU TensorFlow sees; (0, 0) where it does not say."""
    import tensorflow as tf

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append((details.get("device_name", device.name), tuple(details.get("compute_capability") or (0, 0))))
    return gpus


def gpus_with_tensor_cores() -> list[str]:
    """Names of the GPUs TensorFlow sees that run float16 fast."""
    return [name for name, capability in tensorflow_gpus() if capability >= MIN_COMPUTE_CAPABILITY]


def wanted(mode: str) -> tuple[bool, str]:
    """(whether to train in mixed precision, why) for a --mixed-precision mode."""
    if mode not in MODES:
        raise ValueError(f"--mixed-precision takes one of {', '.join(MODES)}, not {mode!r}")
    if mode == "off":
        return False, ""
    if mode == "on":
        return True, "mixed precision (float16 arithmetic, float32 weights): asked for with --mixed-precision on"
    gpus = gpus_with_tensor_cores()
    if not gpus:
        return False, ""
    return True, f"mixed precision (float16 arithmetic, float32 weights) on {', '.join(gpus)}"


@contextlib.contextmanager
def policy_for(mode: str):
    """Keras's global dtype policy set for the run (mixed where `wanted`), and put back
    after it: several runs (tests, the benchmark) share one process."""
    enabled, why = wanted(mode)
    previous = keras.config.dtype_policy()
    if enabled:
        print(why, file=sys.stderr, flush=True)
        keras.config.set_dtype_policy(MIXED)
    try:
        yield enabled
    finally:
        keras.config.set_dtype_policy(previous)


def is_mixed(model: keras.Model) -> bool:
    return MIXED in json.dumps(model.get_config(), default=str)


def as_float32(model: keras.Model) -> keras.Model:
    """`model` itself when it computes in float32; else the same network rebuilt with
    float32 layers and given its weights (which mixed precision keeps in float32)."""
    text = json.dumps(model.get_config(), default=str)
    if MIXED not in text:
        return model
    import training.layers  # noqa: F401  registers the in-graph preprocessing layers

    config = json.loads(re.sub(rf'"{MIXED}"', '"float32"', text))
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def load_float32(path) -> keras.Model:
    """A saved classifier to score or export (safe mode: no code from the file runs), in
    float32. Not compiled: nothing trains it, and a mixed run's loss-scaling optimizer
    state would not fit a float32 copy's optimizer."""
    import training.layers  # noqa: F401  registers the in-graph preprocessing layers

    return as_float32(keras.models.load_model(path, compile=False, safe_mode=True))
