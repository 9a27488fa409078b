"""TrainingProcess and RunProgress with a fake convnet-train: a small script that prints
schema-1 events, garbage and stderr, stops on SIGINT, ignores SIGTERM, kills itself or
leaves a grandchild, so every path of the Train tab's engine runs in well under a second.

One slow test runs the real `convnet-train … --progress jsonl` (LeNet-5 on a tiny
two-class set, stopped after its first epoch, then resumed to the end) exactly as the tab
drives it: find_launcher → train_argv → TrainingProcess → RunProgress → run_history. It
is skipped where no convnet-train can train (the app's own environment)."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.core.run_history import FINISHED, RESUMABLE, list_runs, read_history
from desktop.core.run_progress import DONE, FAILED, RUNNING, STOPPED, STOPPING, RunProgress, describe_exit
from desktop.core.train_settings import TrainSettings, fresh_run_dir, resume_argv, save_settings, train_argv
from desktop.core.trainer_launcher import Launcher, find_launcher
from desktop.core.training_run import TrainingProcess, parse_line

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake child uses POSIX signals")

FAKE = textwrap.dedent(
    r"""
    import json, os, signal, subprocess, sys, time
    scenario, run_dir = sys.argv[1], sys.argv[2]

    def emit(event, **fields):
        print(json.dumps({"event": event, "time": time.time(), **fields}), flush=True)

    def save_resume_point():
        os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
        with open(os.path.join(run_dir, "checkpoints", "state.json"), "w") as f:
            json.dump({"stage": 1, "next_epoch": 1, "checkpoint": "epoch-0001", "finished": False}, f)

    def on_int(*_):
        emit("stopped", reason="interrupted", epoch=1, run_dir=run_dir, resume_command=["convnet-train", "train", "--resume", run_dir])
        sys.exit(130)

    signal.signal(signal.SIGINT, on_int)
    emit("start", command="train", run_dir=run_dir, data_dir="/data", backbone="lenet5", weights="none",
         epochs=2, stages=1, batch_size=8, image_size=[32, 32])
    for n in range(3):
        print(f"stderr line {n}", file=sys.stderr, flush=True)
    if scenario == "full":
        emit("dataset", classes=["a", "b"], counts={"a": 5, "b": 7}, train=10, validation=2, skipped=[])
        emit("stage", stage=1, stages=1, first_epoch=1, last_epoch=2, learning_rate=0.001,
             trainable_parameters=100, description="whole network")
        print("this is not json", flush=True)
        sys.stdout.buffer.write(b"\xff\xfe broken bytes\n[1, 2]\n{\"no_event\": 1}\n"); sys.stdout.flush()
        emit("batch", stage=1, epoch=1, batch=1, batches=2, loss=0.9, accuracy=0.5, images_per_second=100.0)
        emit("epoch", stage=1, epoch=1, epochs=2, loss=0.8, accuracy=0.6, val_loss=None, val_accuracy=0.5,
             learning_rate=0.001, seconds=1.5)
        emit("done", run_dir=run_dir, best={"epoch": 1, "val_accuracy": 0.5, "val_loss": 0.7}, epochs_run=1,
             seconds=2.0, beats_chance=True)
    elif scenario == "loop":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open(os.path.join(run_dir, "grandchild.pid"), "w") as f:
            child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(120)"])
            f.write(str(child.pid))
        save_resume_point()
        batch = 0
        while True:
            batch += 1
            emit("batch", stage=1, epoch=2, batch=batch, batches=None, loss=0.5, accuracy=0.7, images_per_second=50.0)
            time.sleep(0.05)
    elif scenario == "sigkill":
        save_resume_point()
        emit("epoch", stage=1, epoch=1, epochs=2, loss=0.8, accuracy=0.6, val_loss=0.9, val_accuracy=0.5,
             learning_rate=0.001, seconds=1.0)
        print("Killed while allocating 9 GB", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    elif scenario == "usage":
        emit("error", kind="usage", message="DATA_DIR does not exist")
        sys.exit(2)
    """
)


@pytest.fixture
def fake(tmp_path: Path):
    script = tmp_path / "fake_convnet_train.py"
    script.write_text(FAKE, encoding="utf-8")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    started: list[TrainingProcess] = []

    def start(scenario: str) -> TrainingProcess:
        process = TrainingProcess([sys.executable, str(script), scenario, str(run_dir)], cwd=tmp_path)
        started.append(process)
        return process

    start.run_dir = run_dir
    yield start
    for process in started:
        process.close(grace=2.0)


def drain(process: TrainingProcess, progress: RunProgress, until, timeout: float = 20.0) -> list[dict]:
    """Apply events until `until(events)` holds or the timeout passes."""
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = process.poll_events()
        for event in new:
            progress.apply(event)
        events += new
        if until(events):
            return events
        time.sleep(0.02)
    raise AssertionError(f"timed out; events so far: {[e['event'] for e in events]}")


def exited(events: list[dict]) -> bool:
    return any(e["event"] == "process_exit" for e in events)


def gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether `pid` is dead (a zombie waiting for init to reap it counts as dead)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat")
            if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except ProcessLookupError:
            return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def test_a_finished_run_gives_every_event_in_order_and_keeps_bad_lines(fake):
    process = fake("full")
    progress = RunProgress()
    events = drain(process, progress, exited)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "process_exit"
    assert kinds.index("done") < kinds.index("process_exit")
    unparsed = [e["text"] for e in events if e["event"] == "unparsed"]
    assert unparsed[0] == "this is not json" and "broken bytes" in unparsed[1]
    assert unparsed[2:] == ["[1, 2]", '{"no_event": 1}']
    assert process.returncode == 0 and not process.running and process.wait(0) == 0
    assert process.stderr_tail == ["stderr line 0", "stderr line 1", "stderr line 2"]
    assert progress.state == DONE and progress.classes == ["a", "b"] and progress.counts == {"a": 5, "b": 7}
    assert progress.best == {"epoch": 1, "val_accuracy": 0.5, "val_loss": 0.7}
    assert [r.epoch for r in progress.epochs] == [1] and progress.epochs[0].val_loss is None
    assert progress.stage_starts == {1: 1} and not progress.can_resume
    assert process.poll_events() == []


def test_stop_sends_sigint_and_the_run_offers_resume(fake):
    process = fake("loop")
    progress = RunProgress()
    drain(process, progress, lambda events: any(e["event"] == "batch" for e in events))
    assert progress.state == RUNNING and progress.images_per_second == pytest.approx(50.0)
    process.request_stop()
    progress.mark_stopping()
    assert progress.state == STOPPING
    events = drain(process, progress, exited)
    assert [e["event"] for e in events][-2:] == ["stopped", "process_exit"]
    assert process.returncode == 130
    assert progress.state == STOPPED and progress.can_resume
    assert progress.resume_command[-2:] == ["--resume", str(fake.run_dir)]
    assert gone(int((fake.run_dir / "grandchild.pid").read_text())), "the grandchild outlived its parent"


def test_close_escalates_to_sigkill_and_leaves_no_orphan(fake):
    process = fake("loop")
    progress = RunProgress()
    drain(process, progress, lambda events: (fake.run_dir / "grandchild.pid").exists() and len(events) > 1)
    grandchild = int((fake.run_dir / "grandchild.pid").read_text())
    started = time.monotonic()
    returncode = process.close(grace=0.5)  # SIGTERM is ignored by both: SIGKILL follows
    assert returncode == -signal.SIGKILL and time.monotonic() - started < 8
    assert gone(process.pid, 1.0) and gone(grandchild), "close() left a process behind"
    drain(process, progress, exited, timeout=1.0)
    assert progress.state == FAILED and "SIGKILL" in progress.exit_description


def test_a_child_killed_without_a_word_is_reported_with_its_last_lines(fake):
    process = fake("sigkill")
    progress = RunProgress(run_dir=str(fake.run_dir))
    drain(process, progress, exited)
    assert process.returncode == -signal.SIGKILL
    assert progress.state == FAILED and "out of memory" in progress.exit_description
    assert "without reporting why" in progress.error
    assert progress.stderr_tail[-1] == "Killed while allocating 9 GB"
    assert progress.can_resume  # the fake saved a resume point before dying


def test_a_usage_error_fails_with_its_message(fake):
    process = fake("usage")
    progress = RunProgress()
    drain(process, progress, exited)
    assert process.returncode == 2 and progress.state == FAILED
    assert progress.error == "DATA_DIR does not exist" and progress.error_kind == "usage"


def test_terminate_and_kill_on_an_exited_child_are_harmless(fake):
    process = fake("usage")
    assert process.wait(20) == 2
    assert process.terminate(0.1) and process.kill(0.1)
    process.request_stop()
    assert process.close() == 2


def test_parse_line_never_raises():
    assert parse_line(b'{"event": "epoch", "epoch": 1}\n') == {"event": "epoch", "epoch": 1}
    for raw in (b"", b"\n", b"{", b'"text"', b"\xff\n", b'{"event": 3}', b'{"event": "process_exit"}', b"[" * 10_000):
        assert parse_line(raw)["event"] == "unparsed"


def test_describe_exit_in_words():
    assert describe_exit(0) == "finished"
    assert "Ctrl+C" in describe_exit(130)
    assert "SIGKILL" in describe_exit(-9) and "SIGKILL" in describe_exit(137)
    assert "SIGSEGV" in describe_exit(-11)
    assert describe_exit(3) == "failed (exit status 3)"


# --------------------------------------------------------------------------- RunProgress

RECORDED = [
    {
        "event": "start",
        "time": 100.0,
        "command": "train",
        "run_dir": "/runs/r",
        "data_dir": "/d",
        "backbone": "mobilenet_v2",
        "weights": "imagenet",
        "epochs": 4,
        "stages": 2,
        "batch_size": 32,
        "image_size": [224, 224],
    },
    {
        "event": "dataset",
        "time": 101.0,
        "classes": ["cat", "dog"],
        "counts": {"cat": 60, "dog": 40},
        "train": 80,
        "validation": 20,
        "skipped": [{"path": "x.jpg", "reason": "not an image"}],
    },
    {
        "event": "stage",
        "time": 102.0,
        "stage": 1,
        "stages": 2,
        "first_epoch": 1,
        "last_epoch": 2,
        "learning_rate": 0.001,
        "trainable_parameters": 2562,
        "description": "head on the frozen base",
    },
    {
        "event": "batch",
        "time": 103.0,
        "stage": 1,
        "epoch": 1,
        "batch": 1,
        "batches": 3,
        "loss": 0.7,
        "accuracy": 0.5,
        "images_per_second": 100.0,
    },
    {
        "event": "batch",
        "time": 105.0,
        "stage": 1,
        "epoch": 1,
        "batch": 3,
        "batches": 3,
        "loss": 0.6,
        "accuracy": 0.6,
        "images_per_second": 200.0,
    },
    {
        "event": "epoch",
        "time": 106.0,
        "stage": 1,
        "epoch": 1,
        "epochs": 4,
        "loss": 0.6,
        "accuracy": 0.6,
        "val_loss": 0.5,
        "val_accuracy": 0.7,
        "learning_rate": 0.001,
        "seconds": 4.0,
    },
    {
        "event": "checkpoint",
        "time": 106.1,
        "epoch": 1,
        "kind": "best",
        "path": "/runs/r/best.keras",
        "val_accuracy": 0.7,
    },
    {
        "event": "epoch",
        "time": 110.0,
        "stage": 1,
        "epoch": 2,
        "epochs": 4,
        "loss": 0.5,
        "accuracy": 0.7,
        "val_loss": None,
        "val_accuracy": 0.65,
        "learning_rate": 0.001,
        "seconds": 4.0,
    },
    {"event": "early_stop", "time": 110.1, "stage": 1, "epoch": 2, "monitor": "val_accuracy", "patience": 1},
    {
        "event": "stage",
        "time": 111.0,
        "stage": 2,
        "stages": 2,
        "first_epoch": 3,
        "last_epoch": 4,
        "learning_rate": 1e-5,
        "trainable_parameters": 900000,
        "description": "top of the base",
    },
    {
        "event": "batch",
        "time": 113.0,
        "stage": 2,
        "epoch": 3,
        "batch": 1,
        "batches": 4,
        "loss": 0.4,
        "accuracy": 0.8,
        "images_per_second": "fast",
    },
]


def test_run_progress_over_a_recorded_run():
    progress = RunProgress()
    for event in RECORDED:
        progress.apply(event)
    assert progress.state == RUNNING and progress.run_dir == "/runs/r" and progress.backbone == "mobilenet_v2"
    assert progress.train_images == 80 and progress.skipped[0]["path"] == "x.jpg"
    assert progress.stage_starts == {1: 1, 2: 3} and progress.stage == 2 and progress.planned_epochs == 4
    assert [(r.epoch, r.stage, r.val_accuracy) for r in progress.epochs] == [(1, 1, 0.7), (2, 1, 0.65)]
    assert progress.best == {"epoch": 1, "val_accuracy": 0.7, "val_loss": 0.5}
    assert progress.images_per_second == pytest.approx(130.0)  # 100, then 0.3 of the way to 200
    assert progress.early_stops[0]["epoch"] == 2
    assert (progress.epoch, progress.batch, progress.batches) == (3, 1, 4)
    # Stage 2 has no timed epoch yet: its first quarter took 2 s (111 -> 113), so 8 s an
    # epoch; 3/4 of epoch 3 and all of epoch 4 are left.
    assert progress.time_left() == pytest.approx(6.0 + 8.0)
    assert progress.time_left(now=116.0) == pytest.approx(11.0)
    progress.apply(
        {"event": "epoch", "time": 121.0, "stage": 2, "epoch": 3, "epochs": 4, "seconds": 10.0, "val_accuracy": 0.9}
    )
    assert progress.time_left() == pytest.approx(10.0)  # one stage-2 epoch of 10 s left
    progress.apply(
        {
            "event": "done",
            "time": 131.0,
            "run_dir": "/runs/r",
            "epochs_run": 4,
            "seconds": 31.0,
            "best": {"epoch": 4, "val_accuracy": 0.95, "val_loss": 0.2},
            "beats_chance": True,
        }
    )
    assert progress.state == DONE and progress.best["val_accuracy"] == 0.95 and progress.time_left() == 0.0
    progress.apply({"event": "process_exit", "returncode": 0, "stderr_tail": []})
    assert progress.state == DONE and progress.exit_description == "finished"


def test_run_progress_ignores_nonsense():
    progress = RunProgress()
    for event in (
        None,
        [],
        {},
        {"event": 5},
        {"event": "__init__"},
        {"event": "epoch", "epoch": "one"},
        {"event": "dataset", "classes": "ab", "counts": [1], "skipped": {"a": 1}},
        {"event": "batch", "epoch": True, "images_per_second": float("nan")},
        {"event": "stage", "stage": None},
        {"event": "unparsed", "text": "hello"},
    ):
        progress.apply(event)
    assert progress.epochs == [] and progress.classes == [] and progress.images_per_second is None
    assert list(progress.unparsed) == ["hello"] and progress.time_left() is None


def test_an_exit_130_without_a_stopped_line_counts_as_stopped(tmp_path: Path):
    progress = RunProgress(run_dir=str(tmp_path))
    progress.apply({"event": "process_exit", "returncode": 130, "stderr_tail": ["^C"]})
    assert progress.state == STOPPED and not progress.can_resume  # no state.json there
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "state.json").write_text(json.dumps({"checkpoint": "epoch-0002", "finished": False}))
    progress = RunProgress(run_dir=str(tmp_path))
    progress.apply({"event": "process_exit", "returncode": -9, "stderr_tail": []})
    assert progress.state == FAILED and progress.can_resume


# --------------------------------------------------------------------------- the real convnet-train


def write_shapes(root: Path, per_class: int = 40) -> Path:
    """Discs and squares, 32x32 grey, at random places and sizes."""
    rng = np.random.default_rng(0)
    for label in ("disc", "square"):
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            image = np.zeros((32, 32), np.uint8)
            x, y, r = (int(v) for v in rng.integers((10, 10, 5), (22, 22, 9)))
            if label == "disc":
                cv2.circle(image, (x, y), r, 255, -1)
            else:
                cv2.rectangle(image, (x - r, y - r), (x + r, y + r), 255, -1)
            cv2.imwrite(str(root / label / f"{index:03d}.png"), image)
    return root


def run_to_end(process: TrainingProcess, progress: RunProgress, stop_after_epoch: int | None = None) -> None:
    deadline = time.monotonic() + 300
    stopped = False
    while time.monotonic() < deadline:
        for event in process.poll_events():
            progress.apply(event)
            if event["event"] == "process_exit":
                return
        if stop_after_epoch is not None and not stopped and len(progress.epochs) >= stop_after_epoch:
            process.request_stop()
            progress.mark_stopping()
            stopped = True
        time.sleep(0.05)
    process.close(grace=5)
    raise AssertionError(f"convnet-train did not finish: {process.stderr_tail[-10:]}")


@pytest.mark.slow
def test_stop_and_resume_a_real_run(tmp_path: Path):
    launcher = find_launcher()
    if not isinstance(launcher, Launcher):
        pytest.skip(f"no convnet-train that can train: {launcher.explanation}")
    data = write_shapes(tmp_path / "shapes")
    settings = TrainSettings(
        data_dir=str(data),
        run_dir=str(fresh_run_dir(data, "lenet5")),
        backbone="lenet5",
        weights="none",
        preset="quick",
        augment="none",
        advanced={"epochs": 4, "batch-size": 4, "tensorboard": False},
    )
    save_settings(settings)
    process = TrainingProcess(train_argv(launcher, settings, pretrained=False), cwd=tmp_path)
    progress = RunProgress(run_dir=settings.run_dir)
    try:
        run_to_end(process, progress, stop_after_epoch=1)
    finally:
        process.close(grace=5)
    tail = "\n".join(progress.stderr_tail[-15:])
    assert progress.classes == ["disc", "square"] and progress.planned_epochs == 4, tail
    if progress.state == DONE:
        pytest.skip("the run finished before Stop reached it")  # tiny epochs on a fast machine
    assert progress.state == STOPPED and process.returncode == 130 and progress.can_resume, tail
    assert [run.status for run in list_runs(data.parent / "shapes-runs")] == [RESUMABLE]

    process = TrainingProcess(resume_argv(launcher, settings.run_dir), cwd=tmp_path)
    resumed = RunProgress(run_dir=settings.run_dir)
    try:
        run_to_end(process, resumed)
    finally:
        process.close(grace=5)
    tail = "\n".join(resumed.stderr_tail[-15:])
    assert resumed.command == "resume" and resumed.state == DONE and process.returncode == 0, tail
    assert resumed.epochs[-1].epoch == 4 and resumed.time_left() == 0.0
    (run,) = list_runs(data.parent / "shapes-runs", data_dir=data)
    assert run.status == FINISHED and run.backbone == "lenet5" and run.epochs == 4
    assert run.best_val_accuracy == pytest.approx(resumed.best["val_accuracy"])
    assert [row.epoch for row in read_history(settings.run_dir)] == [1, 2, 3, 4]
