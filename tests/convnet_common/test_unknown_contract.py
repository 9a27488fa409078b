"""The contract's optional unknown score, on plain values: the record the exporter writes
(training.unknown_score.threshold_record) is read back, malformed entries refuse the file
with a ContractError, a non-finite score fails the test run, and files without it load."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from convnet_common import model_format as fmt
from convnet_common.model_contract import ContractError, read_contract
from convnet_common.unknown_score import KEY_UNKNOWN, QUANTILE_COUNT, UNKNOWN_OUTPUT


@dataclass
class Node:
    name: str
    type: str = "tensor(float)"
    shape: Any = None


IMAGE = [Node("image", "tensor(uint8)", ["N", 16, 16, 3])]
OUTPUTS = [Node("probabilities", shape=["N", 2]), Node("cam", shape=["N", 4, 4, 2]), Node(UNKNOWN_OUTPUT, shape=["N"])]
RECORD = {
    "method": "mahalanobis",
    "threshold": 1.5,
    "accept_rate": 0.95,
    "quantiles": [float(v) for v in np.linspace(0.1, 3.0, QUANTILE_COUNT)],
    "images": 120,
}


def _metadata(unknown: Any = RECORD) -> dict[str, str]:
    metadata = {fmt.KEY_FORMAT_VERSION: "1", fmt.KEY_LABELS: json.dumps(["a", "b"])}
    if unknown is not None:
        metadata[KEY_UNKNOWN] = unknown if isinstance(unknown, str) else json.dumps(unknown)
    return metadata


def _run(rows: int, scores) -> list[np.ndarray]:
    return [np.full((rows, 2), 0.5, np.float32), np.zeros((rows, 4, 4, 2), np.float32), np.asarray(scores)]


def test_exporters_record_is_read_and_its_output_run():
    from training.unknown_score import MahalanobisFit, threshold_record

    fit = MahalanobisFit(np.zeros((2, 3), np.float32), np.eye(3, dtype=np.float32), 0.1, 50)
    record = threshold_record(np.linspace(0.0, 2.0, 120), fit)
    contract = read_contract(_metadata(record), IMAGE, OUTPUTS)
    assert contract.unknown_name == UNKNOWN_OUTPUT and contract.test_outputs[-1] == UNKNOWN_OUTPUT
    assert contract.metadata.unknown.threshold == pytest.approx(record["threshold"])
    assert contract.metadata.unknown.accepted_share(record["threshold"]) == pytest.approx(0.95, abs=0.01)
    contract.check_test_run(_run(2, [0.3, 0.4]), 2)


@pytest.mark.parametrize(
    "change",
    [
        {"threshold": float("nan")},
        {"threshold": "1.5"},
        {"quantiles": RECORD["quantiles"][:100]},
        {"quantiles": RECORD["quantiles"][::-1]},
        {"accept_rate": 1.5},
        {"method": ""},
        {"images": -1},
    ],
)
def test_malformed_entry_refuses_the_file(change):
    with pytest.raises(ContractError, match=KEY_UNKNOWN):
        read_contract(_metadata(dict(RECORD, **change)), IMAGE, OUTPUTS)


def test_unreadable_entry_refuses_the_file():
    with pytest.raises(ContractError, match=KEY_UNKNOWN):
        read_contract(_metadata("{not json"), IMAGE, OUTPUTS)


@pytest.mark.parametrize("scores", [[0.3, float("nan")], [0.3, float("inf")], [[0.3], [0.4]]])
def test_bad_score_fails_the_test_run(scores):
    contract = read_contract(_metadata(), IMAGE, OUTPUTS)
    with pytest.raises(ContractError):
        contract.check_test_run(_run(2, scores), 2)


def test_files_without_the_score_load_with_no_verdict():
    old = read_contract(_metadata(None), IMAGE, OUTPUTS[:2])
    assert old.unknown_name is None and old.metadata.unknown is None
    assert old.check_test_run(_run(1, [])[:2], 1).labels == ["a", "b"]
    no_entry = read_contract(_metadata(None), IMAGE, OUTPUTS)  # a score without its threshold is not run
    assert no_entry.unknown_name is None and UNKNOWN_OUTPUT not in no_entry.test_outputs
