"""`convnet-train train` SIGKILLed mid-epoch resumes from its last checkpoint.

A real training process (LeNet-5 on scikit-learn's digits) is killed at a random moment
of an epoch after at least two finished, resumed, killed again, and resumed to the end:
it continues at the last completed epoch each time, the history has every epoch once,
and the best checkpoint loads and exports.
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from kill_helpers import ROOT, child_env, sigkill, start

from convnet_common.atomic import leftover_temp_files

pytestmark = pytest.mark.slow

EPOCHS = 9
TRAIN = "import sys\nfrom training.cli import main\nsys.exit(main(sys.argv[1:]))\n"


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 of scikit-learn's 8x8 digits as PNGs, one folder per class."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("digits")
    loaded = load_digits()
    for index in np.random.default_rng(0).permutation(len(loaded.target))[:300]:
        folder = root / str(loaded.target[index])
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"{index:04d}.png"), (loaded.images[index] * 255 / 16).astype(np.uint8))
    return root


def _state(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "checkpoints" / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _history_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "history.csv", newline="", encoding="utf-8") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _kill_mid_epoch(process: subprocess.Popen, run_dir: Path, epochs: int, rng: random.Random) -> int:
    """Wait until this process has saved `epochs` (at least 2) epochs, then SIGKILL it inside the next.

    An epoch's length is measured between the process's last two resume-point updates;
    returns the number of epochs the resume point held when the process died.
    """
    state = _state(run_dir)
    changes: list[tuple[int, float]] = [(state["next_epoch"] if state else 0, time.monotonic())]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and len(changes) <= epochs:
        state = _state(run_dir)
        if state is not None and state["next_epoch"] != changes[-1][0]:
            changes.append((state["next_epoch"], time.monotonic()))
        time.sleep(0.005)
    assert process.poll() is None, f"training ended too soon: {process.stderr.read()[-3000:]}"
    (_, before), (_, after) = changes[-2:]
    time.sleep(rng.uniform(0.15, 0.85) * (after - before))
    sigkill(process)
    state = _state(run_dir)
    assert state is not None, "state.json is missing or damaged after the kill"
    return state["next_epoch"]


def _check_resumable(run_dir: Path, saved: int) -> None:
    """What a kill at any moment must leave: a complete resume point and a whole history."""
    state = _state(run_dir)
    assert not state["finished"] and 1 <= saved < EPOCHS
    checkpoints = run_dir / "checkpoints"
    for suffix in (".weights.npz", ".optimizer.npz"):
        assert (checkpoints / f"{state['checkpoint']}{suffix}").stat().st_size > 0
    epochs = _history_epochs(run_dir)
    # history.csv is written just before state.json: it may hold the epoch being saved.
    assert epochs in (list(range(1, saved + 1)), list(range(1, saved + 2))), epochs
    # The best epoch's weights (best.keras is written from them when the stage ends).
    assert (checkpoints / "best.weights.npz").stat().st_size > 0


def _resume(run_dir: Path) -> subprocess.Popen:
    return start(TRAIN, "train", "--resume", str(run_dir), stdout=subprocess.DEVNULL)


def test_sigkill_mid_epoch_resumes_from_the_last_checkpoint(digits: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rng = random.Random(3)
    first = start(
        TRAIN,
        "train",
        str(digits),
        "--backbone",
        "lenet5",
        "--weights",
        "none",
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        "16",
        "--augment",
        "none",
        "--no-tensorboard",
        "--seed",
        "5",
        "--early-stopping-patience",
        "0",
        "--reduce-lr-patience",
        "1",
        "--out",
        str(run_dir),
        stdout=subprocess.DEVNULL,
    )
    saved = _kill_mid_epoch(first, run_dir, 2, rng)
    _check_resumable(run_dir, saved)

    second = _resume(run_dir)
    saved_again = _kill_mid_epoch(second, run_dir, 2, rng)
    err = second.stderr.read()
    assert f"resuming {run_dir} at epoch {saved + 1} " in err, err[-3000:]
    assert saved_again > saved, "the resumed run saved no epoch of its own"
    _check_resumable(run_dir, saved_again)

    last = _resume(run_dir)
    _, err = last.communicate(timeout=600)
    assert last.returncode == 0, err[-3000:]
    assert f"resuming {run_dir} at epoch {saved_again + 1} " in err
    assert _history_epochs(run_dir) == list(range(1, EPOCHS + 1)), "epochs duplicated or missing"
    state = _state(run_dir)
    assert state["finished"] and state["next_epoch"] == EPOCHS
    result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    assert result["epochs"] == EPOCHS and result["best_val_accuracy"] > 0.5
    assert (run_dir / "best.keras").stat().st_size > 0
    for target in (
        run_dir / "best.keras",
        run_dir / "checkpoints" / "best.weights.npz",
        run_dir / "history.csv",
        run_dir / "checkpoints" / "state.json",
    ):
        assert leftover_temp_files(target) == [], f"a killed writer's temporary file of {target.name} is left"
    assert not [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]

    out = tmp_path / "digits.onnx"
    exported = subprocess.run(
        [sys.executable, "-c", TRAIN, "export", str(run_dir), "--out", str(out)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert out.stat().st_size > 0


def test_resume_keeps_the_learning_rate_and_patience_the_run_had(digits: Path, tmp_path: Path) -> None:
    """A run stopped after epoch 3 resumes with the learning rate ReduceLROnPlateau set at
    that epoch's end and the patience counters of both callbacks, so it stops where the
    uninterrupted run would. With a learning rate of 1e-9 the validation accuracy never
    moves: the rate is cut by 0.2 after every epoch from the second, and early stopping
    (patience 3) ends the run after epoch 4."""
    import keras

    from training.config import TrainConfig
    from training.resume_run import resume
    from training.trainer import train

    class StopAfterThird(keras.callbacks.Callback):  # runs after all of the trainer's callbacks
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == 3:
                raise KeyboardInterrupt

    run_dir = tmp_path / "run"
    config = TrainConfig(
        data_dir=str(digits),
        out=str(run_dir),
        backbone="lenet5",
        weights="none",
        epochs=6,
        learning_rate=1e-9,
        augment="none",
        tensorboard=False,
        seed=1,
        early_stopping_patience=3,
        reduce_lr_patience=1,
    )
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[StopAfterThird()])
    result = resume(run_dir)
    rows = _history_rows(run_dir)
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4], "early stopping lost its patience on resume"
    expected = [1e-9, 1e-9, 2e-10, 4e-11]  # the rate each epoch ran at
    assert [float(row["learning_rate"]) for row in rows] == pytest.approx(expected, rel=1e-4)
    assert result.epochs_run == 4


def _history_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    "content, words",
    [
        ('{"stage": 1, "next_epoch": ', "not valid JSON"),
        ('{"stage": 1, "next_epoch": -3, "checkpoint": "epoch-0001"}', "next_epoch is not a count"),
        ('{"stage": 1, "next_epoch": 2, "checkpoint": "../../elsewhere"}', "outside checkpoints"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_a_damaged_resume_point_is_one_clear_line(tmp_path: Path, capsys, content: str, words: str) -> None:
    from training import cli

    state = tmp_path / "run" / "checkpoints" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text(content, encoding="utf-8")
    assert cli.main(["train", "--resume", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(state) in err[0] and words in err[0], err
