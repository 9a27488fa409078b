"""An undo never runs while a sort into the same DEST runs, and a sort never starts during an undo.

Undo used to read a log still being written and move files back while the sort kept
moving others in. Sorts hold a shared lock on DEST for their whole run, undo the
exclusive one without waiting (desktop/core/sort_lock.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from desktop import undo_sort_cli
from desktop.core import sort_lock
from desktop.core.batch import BatchResult
from desktop.core.sort_log import undo_dest, undo_moves
from desktop.core.sorting import sort_into_folders

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no shared flock on Windows: the lock is not taken")
ROOT = Path(__file__).resolve().parents[3]


def _sources(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = [folder / f"img{i}.png" for i in range(count)]
    for path in paths:
        path.write_bytes(path.name.encode())
    return paths


def _sort_paused_after_first_file(sources: list[Path], dest: Path):
    """Start a moving sort in a thread; it waits after its first file until `go` is set."""
    first_done, go = threading.Event(), threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 1:
            first_done.set()
            assert go.wait(30)

    results = [BatchResult(p, "cat", 0.9, (("cat", 0.9),)) for p in sources]
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault("report", sort_into_folders(results, dest, move=True, progress=progress))
    )
    thread.start()
    assert first_done.wait(30)
    return thread, go, outcome


def test_undo_during_a_running_sort_is_refused_and_then_works(tmp_path: Path, capsys) -> None:
    sources = _sources(tmp_path / "src", 4)
    dest = tmp_path / "dest"
    thread, go, outcome = _sort_paused_after_first_file(sources, dest)
    try:
        with pytest.raises(sort_lock.SortBusyError, match="a sort into .*dest is still running"):
            undo_dest(dest)
        log = next(dest.glob("sort-log-*.jsonl"))
        with pytest.raises(sort_lock.SortBusyError):
            undo_moves(log)
        assert undo_sort_cli.main([str(dest)]) == 2
        assert "is still running; undo it when the sort has finished" in capsys.readouterr().err
        assert not sources[0].exists()  # nothing was moved back under the running sort
    finally:
        go.set()
        thread.join(30)
    assert len(outcome["report"].placed) == 4
    report = undo_dest(dest)
    assert sum(len(r.restored) for r in report.logs) == 4 and all(p.exists() for p in sources)


def test_a_sort_during_an_undo_is_refused(tmp_path: Path) -> None:
    sources = _sources(tmp_path / "src", 2)
    dest = tmp_path / "dest"
    dest.mkdir()
    with sort_lock.undoing(dest):
        with pytest.raises(sort_lock.SortBusyError, match="an undo of .*dest is running"):
            sort_into_folders([BatchResult(p, "cat", 0.9, (("cat", 0.9),)) for p in sources], dest, move=True)
    assert all(p.exists() for p in sources) and not list(dest.rglob("*.png"))


def test_a_killed_sort_does_not_block_undo(tmp_path: Path) -> None:
    """The kernel drops the lock with the process: SIGKILL mid-sort, then undo works."""
    dest = tmp_path / "dest"
    dest.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom desktop.core import sort_lock\n"
            "with sort_lock.sorting(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)",
            str(dest),
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(sort_lock.SortBusyError):
            with sort_lock.undoing(dest):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        holder.stdout.close()
    with sort_lock.undoing(dest):
        pass
    assert list(dest.iterdir()) == []  # no lock file left in DEST
