"""`convnet-train train --progress jsonl`, as the desktop app runs it: a child process whose
stdout is nothing but JSON events (docs/training-progress.md), checked event by event on
real runs of the console script. One short LeNet-5 run on tiny digits is shared by most
tests; a usage error, a SIGTERM with its resume, and a text-mode run have their own.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import progress

pytestmark = pytest.mark.slow

SCRIPT = Path(sys.executable).with_name("convnet-train")
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "training.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}  # TensorFlow as noisy as it gets
LENET = ["--backbone", "lenet5", "--weights", "none", "--batch-size", "16", "--augment", "none", "--no-tensorboard"]
EVENT_FIELDS = {
    "start": {"version", "command", "run_dir", "data_dir", "backbone", "weights", "epochs", "stages"}
    | {"batch_size", "image_size"},
    "dataset": {"classes", "counts", "train", "validation", "skipped"},
    "stage": {"stage", "stages", "first_epoch", "last_epoch", "learning_rate", "trainable_parameters", "description"},
    "batch": {"stage", "epoch", "batch", "batches", "loss", "accuracy", "images_per_second"},
    "epoch": {"stage", "epoch", "epochs", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"},
    "checkpoint": {"epoch", "kind", "path", "val_accuracy"},
    "early_stop": {"stage", "epoch", "monitor", "patience"},
    "stopped": {"reason", "epoch", "run_dir", "resume_command"},
    "done": {"run_dir", "best", "epochs_run", "seconds", "beats_chance"},
    "error": {"kind", "message"},
}


def write_digits(root: Path, count: int) -> Path:
    """As conftest.write_digits (a conftest cannot be imported by name): 8x8 digits as PNGs."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index in np.random.default_rng(0).permutation(len(digits.target))[:count]:
        folder = root / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:04d}.png"), (digits.images[index] * 255 / 16).astype(np.uint8))
    return root


def _refuse_constant(name):
    raise AssertionError(f"bare {name} in the stream")


def parse_stream(stdout: str) -> list[dict]:
    """Every line one strict JSON object with the schema's fields (no NaN, no Infinity)."""
    events = []
    for line in stdout.splitlines():
        event = json.loads(line, parse_constant=_refuse_constant)
        assert isinstance(event, dict), line
        assert set(event) == {"event", "time"} | EVENT_FIELDS[event["event"]], line
        assert isinstance(event["time"], float) and abs(event["time"] - time.time()) < 3600
        events.append(event)
    return events


def convnet_train(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """120 digits, one planted corrupt file and one whose name is not UTF-8."""
    root = write_digits(tmp_path_factory.mktemp("progress") / "digits", 120)
    (root / "3" / "broken.png").write_bytes(b"not an image")
    with open(os.path.join(os.fsencode(root / "5"), b"bad\xff.png"), "wb") as handle:
        handle.write(b"also not an image")
    return root


@pytest.fixture(scope="module")
def jsonl_run(dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "digits"
    result = convnet_train(
        "train", str(dataset), *LENET, "--epochs", "3", "--seed", "1", "--out", str(run_dir), "--progress", "jsonl"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, parse_stream(result.stdout), result.stderr


def test_events_come_in_order(jsonl_run):
    _, events, _ = jsonl_run
    kinds = [event["event"] for event in events]
    assert kinds[:3] == ["start", "dataset", "stage"] and kinds[-1] == "done"
    assert kinds.count("start") == kinds.count("dataset") == kinds.count("done") == 1
    assert "error" not in kinds and "stopped" not in kinds
    epochs = [event for event in events if event["event"] == "epoch"]
    assert [event["epoch"] for event in epochs] == [1, 2, 3]
    assert all(event["epochs"] == 3 and event["stage"] == 1 for event in epochs)
    # Each epoch: its batches, then the epoch, then its checkpoints (the resume point always).
    for number in (1, 2, 3):
        mine = [e for e in events if e.get("epoch") == number and e["event"] in ("batch", "epoch", "checkpoint")]
        assert [e["event"] for e in mine][-3:] in (
            ["epoch", "checkpoint", "checkpoint"],
            ["batch", "epoch", "checkpoint"],
        )
        assert mine[0]["event"] == "batch" and mine[-1] == {**mine[-1], "event": "checkpoint", "kind": "resume"}
    times = [event["time"] for event in events]
    assert times == sorted(times)


def test_start_dataset_and_stage_describe_the_run(jsonl_run, dataset):
    run_dir, events, _ = jsonl_run
    start, data, stage = events[:3]
    assert start["version"] == 1 and start["command"] == "train"
    assert start["run_dir"] == str(run_dir) and start["data_dir"] == str(dataset)
    assert (start["backbone"], start["weights"], start["epochs"], start["stages"]) == ("lenet5", "none", 3, 1)
    assert start["batch_size"] == 16 and start["image_size"] == [32, 32]

    on_disk = {
        folder.name: sum(1 for f in folder.iterdir() if f.name not in ("broken.png", "bad\udcff.png"))
        for folder in sorted(dataset.iterdir())
    }
    assert data["classes"] == sorted(on_disk) and data["counts"] == on_disk
    assert data["train"] + data["validation"] == sum(on_disk.values()) == 120
    skipped = {Path(item["path"]).name: item["reason"] for item in data["skipped"]}
    assert set(skipped) == {"broken.png", "bad\\xff.png"}, skipped  # the non-UTF-8 byte as \xNN
    assert "not a readable image" in skipped["broken.png"] and "UTF-8" in skipped["bad\\xff.png"]

    assert (stage["stage"], stage["stages"], stage["first_epoch"], stage["last_epoch"]) == (1, 1, 1, 3)
    assert stage["learning_rate"] == pytest.approx(1e-3) and stage["trainable_parameters"] > 10_000
    assert stage["description"] == "whole network"


def test_batches_are_throttled_and_end_each_epoch(jsonl_run):
    _, events, _ = jsonl_run
    for number in (1, 2, 3):
        batches = [e for e in events if e["event"] == "batch" and e["epoch"] == number]
        assert batches[-1]["batch"] == batches[-1]["batches"] == 7  # ceil(97 / 16) training batches
        assert [b["batch"] for b in batches] == sorted({b["batch"] for b in batches})
        gaps = [later["time"] - earlier["time"] for earlier, later in zip(batches[:-2], batches[1:-1])]
        assert all(gap >= 0.2 for gap in gaps), gaps  # at most ~4 a second, the last one aside
        assert all(0 < b["loss"] < 10 and 0 <= b["accuracy"] <= 1 and b["images_per_second"] > 0 for b in batches)


def test_checkpoints_and_done_match_the_run_folder(jsonl_run):
    run_dir, events, _ = jsonl_run
    result = json.loads((run_dir / "result.json").read_text())
    done = events[-1]
    assert done["run_dir"] == str(run_dir) and Path(done["run_dir"]).is_dir()
    assert done["best"]["epoch"] == result["best_epoch"]
    assert done["best"]["val_accuracy"] == pytest.approx(result["best_val_accuracy"])
    assert done["epochs_run"] == result["epochs"] == 3 and done["beats_chance"] == result["beats_chance"]
    assert done["seconds"] > 0 and math.isfinite(done["best"]["val_loss"])
    best = [e for e in events if e["event"] == "checkpoint" and e["kind"] == "best"]
    assert (
        best[-1]["epoch"] == result["best_epoch"] and Path(best[-1]["path"]) == run_dir / "checkpoints/best.weights.npz"
    )
    assert (run_dir / "best.keras").is_file()  # written from those weights when the stage ended
    last = [e for e in events if e["event"] == "checkpoint"][-1]
    assert Path(last["path"]).is_file() and last["path"].endswith("epoch-0003.weights.npz")
    epoch = next(e for e in events if e["event"] == "epoch" and e["epoch"] == result["best_epoch"])
    assert epoch["val_loss"] == pytest.approx(done["best"]["val_loss"])
    # The app's run list reads these two from result.json.
    assert result["data_dir"] == events[0]["data_dir"]
    assert result["finished_at"].endswith("+00:00") and result["finished_at"][:4].isdigit()


def test_human_text_goes_to_stderr(jsonl_run):
    _, _, stderr = jsonl_run
    assert "best validation accuracy" in stderr and "skipped" in stderr
    assert '"event"' not in stderr


def test_a_usage_error_is_an_error_event_and_exit_2(tmp_path):
    (tmp_path / "data" / "cat").mkdir(parents=True)
    write_digits(tmp_path / "digits", 20)
    (tmp_path / "digits" / "1").rename(tmp_path / "data" / "cat" / "pictures")
    result = convnet_train("train", str(tmp_path / "data"), *LENET, "--out", str(tmp_path / "run"), "--progress=jsonl")
    assert result.returncode == 2, result.stderr[-2000:]
    events = parse_stream(result.stdout)
    assert [e["event"] for e in events] == ["start", "error"]  # the dataset is read after start
    error = events[-1]
    assert error["kind"] == "usage" and "single class" in error["message"]
    assert f"convnet-train: error: {error['message']}" in result.stderr
    assert not (tmp_path / "run").exists()
    # A command line argparse refuses: the same event, before TensorFlow is loaded.
    refused = convnet_train("train", str(tmp_path / "data"), "--epochs", "many", "--progress", "jsonl")
    assert refused.returncode == 2
    [error] = parse_stream(refused.stdout)
    assert error["kind"] == "usage" and "--epochs" in error["message"] and error["message"] in refused.stderr


def test_sigterm_stops_with_a_resume_command_that_finishes_the_run(dataset, tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", str(dataset), *LENET, "--epochs", "6", "--seed", "2", "--early-stopping-patience", "0"]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        child = subprocess.Popen(
            [*COMMAND, *args, "--out", str(run_dir), "--progress", "jsonl"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=ENV,
        )
        lines = []
        for line in child.stdout:  # until the first resume point is saved
            lines.append(line)
            if '"kind": "resume"' in line:
                child.send_signal(signal.SIGTERM)
                break
        lines.extend(child.stdout)
        assert child.wait(timeout=120) == 143, (tmp_path / "stderr.txt").read_text()[-3000:]
    events = parse_stream("".join(lines))
    stopped = events[-1]
    assert stopped["event"] == "stopped" and stopped["reason"] == "terminated"
    assert 1 <= stopped["epoch"] < 6 and stopped["run_dir"] == str(run_dir)
    assert stopped["epoch"] == max(e["epoch"] for e in events if e["event"] == "epoch")
    assert stopped["resume_command"] == ["convnet-train", "train", "--resume", str(run_dir), "--progress", "jsonl"]
    assert "terminated; continue with: convnet-train train --resume" in (tmp_path / "stderr.txt").read_text()

    resumed = subprocess.run(
        [*COMMAND, *stopped["resume_command"][1:]], capture_output=True, text=True, timeout=240, env=ENV
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = parse_stream(resumed.stdout)
    assert events[0]["event"] == "start" and events[0]["command"] == "resume" and events[0]["epochs"] == 6
    assert events[2] == {**events[2], "event": "stage", "first_epoch": stopped["epoch"] + 1, "last_epoch": 6}
    epochs = [e["epoch"] for e in events if e["event"] == "epoch"]
    assert epochs == list(range(stopped["epoch"] + 1, 7))
    assert events[-1]["event"] == "done" and events[-1]["epochs_run"] == 6


def test_without_the_flag_stdout_has_no_json(dataset, tmp_path):
    result = convnet_train("train", str(dataset), *LENET, "--epochs", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-2000:]
    for line in result.stdout.splitlines():
        with pytest.raises(ValueError):
            json.loads(line)
    assert "best validation accuracy" in result.stderr


def test_stream_text_is_plain_json():
    """Non-finite numbers become null; names that are not UTF-8 show their bytes as \\xNN."""
    assert progress.json_text("bad\udcff.png") == "bad\\xff.png"
    assert progress.json_text("lone\ud800") == "lone\\ud800"
    assert progress._plain({"a": float("nan"), "b": [float("inf"), 1.5, 2], "c": Path("x")}) == {
        "a": None,
        "b": [None, 1.5, 2],
        "c": "x",
    }


def test_planned_epochs_follow_the_stages():
    """Two stages of 4 and 3 epochs: 7 planned; early stopping after 2 moves the end to 5."""
    stages = [(1, 4, 1e-3), (2, 3, 1e-4)]
    assert progress.planned_last_epoch(stages, 1, 0, None) == 7
    assert progress.planned_last_epoch(stages, 1, 2, 4) == 7  # resumed inside stage 1
    assert progress.planned_last_epoch(stages, 2, 2, None) == 5  # stage 1 stopped early at 2
    assert progress.planned_last_epoch(stages, 2, 5, 7) == 7
    assert progress.planned_last_epoch(stages[:1], 2, 4, None) == 4  # finished


def _main_with_run(monkeypatch, capfd, fails_with: BaseException, out: Path):
    """cli.main in this process, with run() replaced by one that raises `fails_with`."""
    from training import cli

    def run(args, argv, progress=None):
        raise fails_with

    monkeypatch.setattr(cli, "run", run)
    try:
        status = cli.main(["train", "data", "--out", str(out), "--progress", "jsonl"])
    except BaseException as error:  # what escapes main is what is checked
        status = error
    print("stdout is ours again")  # main gave file descriptor 1 back
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert lines[-1] == "stdout is ours again"
    return status, parse_stream("\n".join(lines[:-1])), err


def test_an_internal_error_is_an_event_and_keeps_its_traceback(monkeypatch, capfd, tmp_path):
    status, events, _ = _main_with_run(monkeypatch, capfd, RuntimeError("boom\nand more"), tmp_path / "run")
    assert isinstance(status, RuntimeError)  # raised on: the interpreter prints the traceback, exit 1
    assert events == [{**events[0], "event": "error", "kind": "internal", "message": "RuntimeError: boom"}]


def test_sigterm_before_the_first_saved_epoch_has_nothing_to_resume(monkeypatch, capfd, tmp_path):
    status, events, err = _main_with_run(monkeypatch, capfd, progress.Terminated(), tmp_path / "run")
    assert status == 143 and "convnet-train: terminated" in err and "--resume" not in err
    [stopped] = events
    assert stopped["reason"] == "terminated" and stopped["epoch"] == 0 and stopped["resume_command"] is None
