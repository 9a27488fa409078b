"""Tiny model files whose graphs explode only when run are refused before they run.

A 511-byte model allocated about 6 GB in its test run (ConstantOfShape of a constant
[40000, 40000]); a Loop with a trip count of 10^12 hung the CLI and the app at load.
The pre-check (convnet_common/onnx_file.py, rules in graph_limits.py) now refuses control flow (Loop, Scan, If)
and ConstantOfShape / Expand / Tile / Range whose constant sizes ask for more than
MAX_CONSTANT_ELEMENTS, before ONNX Runtime reads the file.

Each load runs in a child process under RLIMIT_AS (3 GB) and a timeout, so a regression
fails this test (the wrong message, a MemoryError or the timeout), not the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx_factory
import pytest

from convnet_common.graph_limits import MAX_CONSTANT_ELEMENTS
from convnet_common.onnx_file import inspect_model_file

ROOT = Path(__file__).resolve().parents[3]
LIMIT_BYTES = 3 * 1024**3
TIMEOUT_S = 60
CHILD = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({LIMIT_BYTES}, {LIMIT_BYTES}))
from desktop.core.model import ModelLoadError, load_model
try:
    load_model(sys.argv[1], provider="cpu")
    print("LOADED")
except ModelLoadError as error:
    print("REFUSED", error)
"""


def _load_in_child(path: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path.name} ran past {TIMEOUT_S} s")
    return result.stdout.strip() or result.stderr.strip()[-2000:]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("constant_of_shape", "'s ConstantOfShape node makes 1,600,000,000 elements from constant sizes"),
        ("expand", "'s Expand node makes 1,600,000,000 elements"),
        ("tile", "'s Tile node makes 1,600,000,000 elements"),
        ("range", "'s Range node makes 1,600,000,000 elements"),
        ("loop", " has control flow (a Loop node)"),
        ("if", " has control flow (a If node)"),
    ],
)
def test_an_exploding_graph_is_refused_before_it_runs(tmp_path: Path, kind: str, expected: str) -> None:
    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(onnx_factory.exploding_model(kind).SerializeToString())
    assert path.stat().st_size < 2000
    output = _load_in_child(path)
    assert output.startswith(f"REFUSED {kind}.onnx was refused: the graph{expected}"), output


def test_sizes_computed_from_the_input_and_small_constants_still_load(tmp_path: Path) -> None:
    """tf2onnx exports use ConstantOfShape on a Shape output (the bundled model does): not judged."""
    bundled = ROOT / "exported_models" / "digits-lenet5.onnx"
    if bundled.exists():
        inspect_model_file(bundled)
    path = tmp_path / "small.onnx"
    model = onnx_factory.exploding_model("constant_of_shape")
    big = next(t for t in model.graph.initializer if t.name == "big")
    big.CopyFrom(onnx_factory.numpy_helper.from_array(onnx_factory.np.array([4, 4], dtype="int64"), "big"))
    path.write_bytes(model.SerializeToString())
    assert _load_in_child(path) == "LOADED"
    assert MAX_CONSTANT_ELEMENTS >= 4 * 4


def _bomb_with_shape_from(tmp_path: Path, how: str) -> Path:
    """The ConstantOfShape bomb with its [40000, 40000] written another legal way (`how`)."""
    model = onnx_factory.exploding_model("constant_of_shape")
    graph = model.graph
    big = next(t for t in graph.initializer if t.name == "big")
    if how == "value_ints":
        graph.initializer.remove(big)
        graph.node.insert(0, onnx_factory.helper.make_node("Constant", [], ["big"], value_ints=[40_000, 40_000]))
    elif how == "constant_tensor":
        graph.initializer.remove(big)
        graph.node.insert(0, onnx_factory.helper.make_node("Constant", [], ["big"], value=big))
    elif how == "int64_data":
        big.ClearField("raw_data")
        big.int64_data.extend([40_000, 40_000])
    path = tmp_path / f"{how}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("how", ["value_ints", "constant_tensor", "int64_data"])
def test_a_constant_size_is_read_however_it_is_written(tmp_path: Path, how: str) -> None:
    from convnet_common.onnx_file import ModelFileError

    with pytest.raises(ModelFileError, match="ConstantOfShape node makes 1,600,000,000 elements"):
        inspect_model_file(_bomb_with_shape_from(tmp_path, how))
