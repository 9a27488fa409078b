"""Every hostile model the tests know, in one place, for every way into the app to run.

`build_hostile_models(folder)` writes each model that must be REFUSED at load and returns
{file name: a regular expression its one-line refusal matches}. The cases come from issue 12
and onnx_factory: graphs that explode from constant sizes (refused by reading the file),
graphs that explode or run for minutes only when run (refused by the guarded first run,
convnet_common/model_probe.py), and graphs whose answers break the contract (NaN, out of
range, wrong shapes). A new entry point that opens model files — the Train tab's "use
this model", adopted models from other tools — runs this corpus, so it inherits every
case instead of re-learning them (tests/desktop/core/test_hostile_model_corpus.py is the
first user: the library and `convnet-classify`).

The slow graph needs a short time limit to be refused quickly: `limit_env(name)` is the
environment to load each file with — SLOW_LIMIT_ENV (CONVNET_MODEL_PROBE_SECONDS) set to
SLOW_LIMIT_SECONDS for that graph only, so the memory bombs keep the default time limit
and reach the memory limit first even on a busy machine.
"""

from __future__ import annotations

from pathlib import Path

import onnx_factory

SLOW_LIMIT_ENV = "CONVNET_MODEL_PROBE_SECONDS"
SLOW_LIMIT_SECONDS = "3"

_READ_REFUSALS = {
    "constant_of_shape": "ConstantOfShape node makes 1,600,000,000 elements",
    "expand": "Expand node makes 1,600,000,000 elements",
    "tile": "Tile node makes 1,600,000,000 elements",
    "range": "Range node makes 1,600,000,000 elements",
    "loop": r"has control flow \(a Loop node\)",
    "if": r"has control flow \(a If node\)",
}
_RUN_REFUSALS = {
    "runtime_constant_of_shape": "its test run needed more than",
    "filling_constant_of_shape": "its test run needed more than",
    "resize": "its test run needed more than",
    "pad": "its test run needed more than",
    "slow_matmul": f"its test run took longer than {SLOW_LIMIT_SECONDS} s",
}
# Answers that break the contract on the load's black test images (nan_on_red passes those
# and fails per image; tests/desktop/core/test_bad_model_outputs.py covers it).
_OUTPUT_REFUSALS = {
    "nan": "invalid answer for a black test image: .*not finite",
    "huge": "invalid answer .*between 0 and 1",
    "negative": "invalid answer .*between 0 and 1",
    "half": "invalid answer .*must sum to 1",
    "zero_cam": r"output 'cam' must be \[N, h, w, 3\]",
    "one_row": "gives 1 rows for a batch of 2 images",
    "inf_cam": "invalid answer .*activation map is not finite",
}


SLOW_MODEL = "explodes-slow_matmul.onnx"


def limit_env(name: str) -> dict[str, str]:
    """The environment changes to load the file `name` with (see the module docstring)."""
    return {SLOW_LIMIT_ENV: SLOW_LIMIT_SECONDS} if name == SLOW_MODEL else {}


def build_hostile_models(folder: Path) -> dict[str, str]:
    """Write every refused-at-load hostile model into `folder`; {file name: refusal pattern}."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    for kind, words in {**_READ_REFUSALS, **_RUN_REFUSALS}.items():
        name = f"explodes-{kind}.onnx"
        (folder / name).write_bytes(onnx_factory.exploding_model(kind).SerializeToString())
        expected[name] = words
    for kind, words in _OUTPUT_REFUSALS.items():
        name = f"answers-{kind}.onnx"
        onnx_factory.save_hostile_output_model(folder / name, kind)
        expected[name] = words
    # A model whose unknown score is NaN for every image, the black test image included (issue 14).
    name = "answers-unknown-nan.onnx"
    onnx_factory.save_unknown_model(folder / name, score="nan")
    expected[name] = "invalid answer for a black test image: the model's unknown score is not a finite number"
    return expected
