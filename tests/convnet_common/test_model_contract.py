"""model_contract: the one reader of the model-file contract, on plain values (no model file, no ORT).

The app's behaviour through it is tested in tests/desktop (test_model_loading,
test_bad_models) and evaluate's in tests/training; this file
pins the rules both sides now share, in particular the ones they used to disagree on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from convnet_common import model_format as fmt
from convnet_common.model_contract import ContractError, read_contract, read_metadata


@dataclass
class Node:
    """What ONNX Runtime's NodeArg offers the reader."""

    name: str
    type: str = "tensor(float)"
    shape: Any = None


IMAGE = Node("image", "tensor(uint8)", ["N", 16, 16, 3])
OUTPUTS = [Node("probabilities", shape=["N", 3]), Node("cam", shape=["N", 4, 4, 3])]


def _metadata(**changes: str) -> dict[str, str]:
    metadata = {
        fmt.KEY_FORMAT_VERSION: "1",
        fmt.KEY_LABELS: json.dumps(["red", "green", "blue"]),
        fmt.KEY_INPUT_SIZE: json.dumps([16, 16]),
        fmt.KEY_TRAINING: json.dumps({"test_accuracy": 0.9}),
        fmt.KEY_BACKBONE: "lenet5",
    }
    metadata.update(changes)
    return metadata


def test_a_full_model_reads_everything() -> None:
    contract = read_contract(_metadata(), [IMAGE], OUTPUTS)
    assert (contract.input_name, contract.input_size, contract.fixed_batch) == ("image", (16, 16), None)
    assert contract.probabilities_name == "probabilities" and contract.cam_name == "cam"
    assert contract.metadata.labels == ["red", "green", "blue"] and contract.metadata.backbone == "lenet5"
    assert contract.test_outputs == ["probabilities", "cam"]
    assert contract.test_batch().shape == (1, 16, 16, 3) and contract.test_batch().dtype == np.uint8
    run = contract.check_test_run([np.full((1, 3), 1 / 3, np.float32), np.zeros((1, 4, 4, 3), np.float32)])
    assert run.labels == ["red", "green", "blue"] and run.has_cam


def test_format_version_alone_makes_metadata() -> None:
    """Labels without format_version are a plain file's stray keys: generic names, no cam (as the app always did)."""
    metadata = {fmt.KEY_LABELS: json.dumps(["cat", "dog", "fox"]), fmt.KEY_INPUT_SIZE: json.dumps([99, 99])}
    contract = read_contract(metadata, [IMAGE], OUTPUTS)
    assert not contract.metadata.has_metadata and contract.cam_name is None
    assert contract.check_test_run([np.zeros((1, 3))]).labels == ["class 0", "class 1", "class 2"]


def test_height_and_width_must_be_fixed_even_when_metadata_declares_them() -> None:
    dynamic = Node("image", "tensor(uint8)", ["N", "H", "W", 3])
    with pytest.raises(ContractError, match=r"fixed height and width; this file's input is uint8 \[N, H, W, 3\]"):
        read_contract(_metadata(), [dynamic], OUTPUTS)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([IMAGE, Node("extra", "tensor(uint8)", [1])], "exactly one input .* has 2: image, extra"),
        ([Node("image", "tensor(float)", ["N", 16, 16, 3])], r"this file's input is float32 \[N, 16, 16, 3\]"),
        ([Node("image", "tensor(uint8)", ["N", 3, 16, 16])], r"this file's input is uint8 \[N, 3, 16, 16\]"),
        ([Node("image", "tensor(uint8)", None)], r"this file's input is uint8 \[\]"),
        ([Node("image", "tensor(uint8)", [1, 9000, 16, 3])], "at most 8,192 a side"),
        ([Node("image", "tensor(uint8)", [1000, 8000, 8000, 3])], "above the limit of 64,000,000 pixels"),
    ],
)
def test_bad_inputs(inputs: list[Node], expected: str) -> None:
    with pytest.raises(ContractError, match=expected):
        read_contract({}, inputs, OUTPUTS)


def test_fixed_batch_is_kept_for_the_test_run() -> None:
    contract = read_contract({}, [Node("image", "tensor(uint8)", [4, 8, 8, 3])], OUTPUTS)
    assert contract.fixed_batch == 4 and contract.test_batch().shape == (4, 8, 8, 3)


def test_only_a_plain_file_may_use_its_one_2d_output() -> None:
    scores = [Node("scores", shape=["N", 3]), Node("features", shape=["N", 7, 7, 8])]
    assert read_contract({}, [IMAGE], scores).probabilities_name == "scores"
    with pytest.raises(ContractError, match="no 'probabilities' output .*scores, features"):
        read_contract(_metadata(), [IMAGE], scores)
    with pytest.raises(ContractError, match="no 'probabilities' output"):
        read_contract({}, [IMAGE], scores + [Node("logits", shape=["N", 3])])


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({fmt.KEY_FORMAT_VERSION: "2"}, "format version '2' is not supported"),
        ({fmt.KEY_LABELS: "[1, 2]"}, "non-empty list of strings"),
        ({fmt.KEY_LABELS: "[oops"}, "'labels' is not valid JSON"),
        ({fmt.KEY_INPUT_SIZE: "[32, 32]"}, r"'input_size' is \[32, 32\] but the input tensor is \[16, 16\]"),
        ({fmt.KEY_TRAINING: "[]"}, "'training' must be a JSON object"),
        ({fmt.KEY_BACKBONE: "x" * (fmt.MAX_METADATA_VALUE_BYTES + 1)}, "above the 1,000,000-byte limit"),
    ],
)
def test_bad_metadata(changes: dict[str, str], expected: str) -> None:
    with pytest.raises(ContractError, match=expected):
        read_metadata(_metadata(**changes), (16, 16))


def test_missing_labels_are_refused() -> None:
    metadata = _metadata()
    del metadata[fmt.KEY_LABELS]
    with pytest.raises(ContractError, match="has no 'labels' entry"):
        read_metadata(metadata, (16, 16))


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([np.zeros((1, 2)), np.zeros((1, 4, 4, 2))], "lists 3 labels but 'probabilities' has 2 classes"),
        (
            [np.zeros((1, 3, 1)), np.zeros((1, 4, 4, 3))],
            r"'probabilities' must be \[N, classes\]; it gives \[1, 3, 1\]",
        ),
        ([np.zeros((1, 3)), np.zeros((1, 4, 3))], r"'cam' must be \[N, h, w, 3\]; it gives \[1, 4, 3\]"),
    ],
)
def test_the_test_run_is_checked(results: list[np.ndarray], expected: str) -> None:
    contract = read_contract(_metadata(), [IMAGE], OUTPUTS)
    with pytest.raises(ContractError, match=expected):
        contract.check_test_run(results)


def test_without_a_cam_output_there_are_no_maps() -> None:
    contract = read_contract(_metadata(), [IMAGE], OUTPUTS[:1])
    assert contract.cam_name is None and contract.test_outputs == ["probabilities"]
    assert not contract.check_test_run([np.zeros((2, 3))]).has_cam
