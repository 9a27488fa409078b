"""`train --resume` on a damaged checkpoints/state.json is refused by name, before any
training: once it trained a whole epoch and then failed with a traceback or with
"Unknown format code 'f' for object of type 'str'", having overwritten the resume point."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from convnet_common.run_layout import RunFolder
from training import cli


@pytest.fixture(scope="module")
def resumable_run(tmp_path_factory):
    """A tiny finished LeNet-5 run, turned back into one interrupted after epoch 1 of 2."""
    root = tmp_path_factory.mktemp("resume-check")
    for index, name in enumerate(("a", "b")):
        (root / "data" / name).mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(str(root / "data" / name / f"{i}.png"), np.full((16, 16, 3), 40 + 120 * index, np.uint8))
    run_dir = root / "run"
    assert (
        cli.main(
            [
                "train",
                str(root / "data"),
                "--backbone",
                "lenet5",
                "--weights",
                "none",
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--augment",
                "none",
                "--no-tensorboard",
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    state_path = RunFolder(run_dir).state
    state = json.loads(state_path.read_text())
    state.update(stage=1, next_epoch=1, stage_end=2, optimizer_stage=1, finished=False)
    state_path.write_text(json.dumps(state))
    return run_dir


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _damaged(resumable_run, tmp_path, change):
    run_dir = tmp_path / "run"
    shutil.copytree(resumable_run, run_dir)
    state_path = RunFolder(run_dir).state
    state = json.loads(state_path.read_text())
    change(state, run_dir)
    state_path.write_text(json.dumps(state))
    return run_dir


def _missing_weights(state, run_dir):
    RunFolder(run_dir).epoch_weights(state["checkpoint"]).unlink()


CASES = {
    "best": (lambda s, _: s.update(best="abc"), "best: 'abc'"),
    "callbacks": (lambda s, _: s.update(callbacks=[1, 2]), "callbacks: list"),
    "stage_end": (lambda s, _: s.update(stage_end="x"), "stage_end: 'x'"),
    "stage": (lambda s, _: s.update(stage=7), "stage: 7"),
    "epoch past the run": (lambda s, _: s.update(next_epoch=40, stage_end=50), "next_epoch: 40 is past"),
    "counter": (lambda s, _: s.update(callbacks={"reduce_lr": {"wait": "two"}}), "callbacks.reduce_lr.wait"),
    "missing checkpoint file": (_missing_weights, "checkpoint: epoch-0002.weights.npz is missing"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_resume_point_is_refused_by_name(resumable_run, tmp_path, capsys, case):
    change, expected = CASES[case]
    run_dir = _damaged(resumable_run, tmp_path, change)
    before = _snapshot(run_dir)
    assert cli.main(["train", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("convnet-train: error:"))
    assert line.startswith(f"convnet-train: error: {RunFolder(run_dir).state}: ")
    assert expected in line, err
    assert "Epoch" not in err and "Traceback" not in err  # refused before any training
    assert _snapshot(run_dir) == before, "the run folder changed"


def test_every_problem_is_named_in_one_line(resumable_run, tmp_path, capsys):
    run_dir = _damaged(resumable_run, tmp_path, lambda s, _: s.update(best="abc", stage_end="x", callbacks=[1]))
    assert cli.main(["train", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "best: 'abc'" in err and "stage_end: 'x'" in err and "callbacks: list" in err


def test_train_does_not_write_over_an_existing_run(resumable_run, tmp_path, capsys):
    """A new run into a folder holding one would mix its config with the old checkpoint."""
    run_dir = tmp_path / "run"
    shutil.copytree(resumable_run, run_dir)
    before = _snapshot(run_dir)
    data_dir = resumable_run.parent / "data"
    assert (
        cli.main(
            [
                "train",
                str(data_dir),
                "--backbone",
                "lenet5",
                "--weights",
                "none",
                "--epochs",
                "1",
                "--no-tensorboard",
                "--out",
                str(run_dir),
            ]
        )
        == 2
    )
    assert "already holds a run" in capsys.readouterr().err
    assert _snapshot(run_dir) == before
