"""The run list over folders written here: finished, resumable, running, failed, and
folders whose files are missing, huge or malformed (one bad run never hides the others)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from desktop.core.run_history import (
    FAILED,
    FINISHED,
    RESUMABLE,
    RUNNING,
    EpochRecord,
    has_resume_point,
    list_runs,
    read_history,
    read_metrics,
    read_result,
    report_files,
)

HISTORY = (
    "epoch,stage,accuracy,loss,val_accuracy,val_loss,learning_rate\n"
    "1,1,0.5,1.2,0.6,1.0,0.001\n"
    "2,1,0.7,0.9,0.8,0.7,0.001\n"
    "3,2,0.8,0.6,0.75,nan,1e-05\n"
)


def write_run(root: Path, name: str, *, result=None, state=None, history=None, config=True, mtime=None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    if config:
        (run / "config.yaml").write_text("backbone: lenet5\n")
    if history is not None:
        (run / "history.csv").write_text(history)
    if state is not None:
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "state.json").write_text(state if isinstance(state, str) else json.dumps(state))
    if result is not None:
        (run / "result.json").write_text(result if isinstance(result, str) else json.dumps(result))
    if mtime is not None:
        for path in run.rglob("*"):
            os.utime(path, (mtime, mtime))
    return run


def test_runs_are_listed_newest_first_with_their_status(tmp_path: Path):
    now = time.time()
    write_run(
        tmp_path,
        "old-finished",
        result={"backbone": "lenet5", "dataset": "digits", "best_val_accuracy": 0.9, "best_epoch": 3, "epochs": 4},
        history=HISTORY,
        mtime=now - 3000,
    )
    write_run(
        tmp_path,
        "resumable",
        state={"stage": 1, "next_epoch": 2, "checkpoint": "epoch-0002", "finished": False},
        history=HISTORY,
        mtime=now - 2000,
    )
    write_run(tmp_path, "never-saved", mtime=now - 1000)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "a-file.txt").write_text("x")
    runs = list_runs(tmp_path)
    assert [r.name for r in runs] == ["never-saved", "resumable", "old-finished"]
    never, resumable, finished = runs
    assert (finished.status, finished.backbone, finished.best_val_accuracy, finished.best_epoch, finished.epochs) == (
        FINISHED,
        "lenet5",
        0.9,
        3,
        4,
    )
    assert resumable.status == RESUMABLE and resumable.best_val_accuracy == 0.8 and resumable.best_epoch == 2
    assert resumable.epochs == 3
    assert never.status == FAILED and "before the first epoch" in never.detail


def test_a_live_lock_holder_means_running_and_a_dead_one_does_not(tmp_path: Path):
    run = write_run(tmp_path, "live", state={"checkpoint": "epoch-0001", "finished": False})
    (run / ".lock").write_text(str(os.getpid()))
    dead = write_run(tmp_path, "dead", state={"checkpoint": "epoch-0001", "finished": False})
    (dead / ".lock").write_text("999999999")
    status = {r.name: r.status for r in list_runs(tmp_path)}
    assert status == {"live": RUNNING, "dead": RESUMABLE}


def test_bad_files_make_unknowns_not_errors(tmp_path: Path):
    write_run(tmp_path, "bad-result", result="{not json")
    write_run(tmp_path, "list-result", result="[1, 2]")
    write_run(tmp_path, "deep-state", state="[" * 100 + "]" * 100)
    write_run(tmp_path, "finished-state", state={"checkpoint": "epoch-0001", "finished": True})
    write_run(
        tmp_path, "typed", result={"best_val_accuracy": "high", "epochs": True, "backbone": 5, "finished_at": 1e300}
    )
    huge = write_run(tmp_path, "huge-result", result="")
    with open(huge / "result.json", "wb") as handle:
        handle.truncate(50_000_000)  # sparse: no disk used
    write_run(tmp_path, "bad-history", history="epoch,stage\n\x00,1\nx,y\n4,\n", state={"checkpoint": "c"})
    runs = {r.name: r for r in list_runs(tmp_path)}
    assert runs["bad-result"].status == FAILED and "unreadable" in runs["bad-result"].detail
    assert runs["list-result"].status == FAILED
    assert runs["deep-state"].status == FAILED and "state.json" in runs["deep-state"].detail
    assert runs["finished-state"].status == FAILED and "result.json is missing" in runs["finished-state"].detail
    typed = runs["typed"]
    assert typed.status == FINISHED and typed.best_val_accuracy is None and typed.epochs is None
    assert typed.backbone is None
    assert runs["huge-result"].status == FAILED
    assert runs["bad-history"].status == RESUMABLE and runs["bad-history"].epochs == 4
    assert read_history(tmp_path / "bad-history") == [EpochRecord(epoch=4)]


def test_history_metrics_and_report(tmp_path: Path):
    run = write_run(tmp_path, "r", result={"backbone": "x"}, history=HISTORY)
    rows = read_history(run)
    assert [r.epoch for r in rows] == [1, 2, 3] and rows[2].stage == 2
    assert rows[2].val_loss is None and rows[2].learning_rate == 1e-05 and rows[0].accuracy == 0.5
    assert read_metrics(run) is None and report_files(run) == {}
    (run / "report").mkdir()
    (run / "report" / "metrics.json").write_text(json.dumps({"accuracy": 0.9, "per_class": []}))
    (run / "report" / "confusion_matrix.png").write_bytes(b"png")
    assert read_metrics(run)["accuracy"] == 0.9
    assert sorted(report_files(run)) == ["confusion_matrix.png", "metrics.json"]
    assert read_result(run) == {"backbone": "x"}
    assert read_history(tmp_path / "missing") == [] and read_result(tmp_path / "missing") is None


def test_filter_by_dataset_keeps_runs_that_do_not_say(tmp_path: Path):
    data, other = tmp_path / "pets", tmp_path / "cars"
    data.mkdir()
    other.mkdir()
    write_run(tmp_path / "runs", "mine", result={"data_dir": str(data)})
    write_run(tmp_path / "runs", "theirs", result={"data_dir": str(other)})
    write_run(tmp_path / "runs", "unknown", result={})
    settings_only = write_run(tmp_path / "runs", "settings", state={"checkpoint": "c"})
    (settings_only / "train-settings.json").write_text(json.dumps({"data_dir": str(other), "backbone": "vgg16"}))
    names = sorted(r.name for r in list_runs(tmp_path / "runs", data_dir=data))
    assert names == ["mine", "unknown"]
    assert {r.name: r.backbone for r in list_runs(tmp_path / "runs")}["settings"] == "vgg16"


def test_resume_point_and_missing_roots(tmp_path: Path):
    assert not has_resume_point(None) and not has_resume_point(tmp_path)
    run = write_run(tmp_path, "r", state={"checkpoint": "", "finished": False})
    assert not has_resume_point(run)
    assert list_runs(tmp_path / "nowhere") == []
