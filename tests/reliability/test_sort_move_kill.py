"""`convnet-classify --sort-into DEST --move`, SIGKILLed in the middle of sorting.

After every kill each image exists exactly once (at its source or in DEST, checked by
content hash), nothing in DEST is a partial image, and undo from the log puts every
image back where it was. Moves across filesystems (DEST on /dev/shm) cannot be one
atomic step: there the one image in flight may exist twice, never zero times.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from kill_helpers import ROOT, child_env, run_to_end, sigkill, start

from desktop.core import sort_log, sorting
from desktop.core.batch import BatchResult
from desktop.core.sorting import LOG_PREFIX

IMAGES = 400
CLASSIFY_AND_SORT = "import sys\nfrom desktop.classify_cli import main\nsys.exit(main(sys.argv[1:]))\n"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images with unique content under awkward names, in a few nested folders."""
    folder = tmp_path_factory.mktemp("pristine")
    rng = np.random.default_rng(11)
    colours = [(230, 20, 20), (20, 230, 20), (20, 20, 230)]
    for index in range(IMAGES):
        image = np.empty((72, 72, 3), dtype=np.uint8)
        image[:] = colours[index % 3]
        image[:24] = rng.integers(0, 256, size=(24, 72, 3), dtype=np.uint8)  # unique, slow to compress
        sub = folder / ["", "nested", "nested/déjà vu"][index % 3]
        name = ["photo {:04d}.png", "-dash {:04d}.png", "ñandú {:04d}.png"][index % 3].format(index)
        sub.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(sub / name), image)
    return folder


def _is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".partial")


def _tree(folder: Path, temps: bool = True) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): _sha(p) for p in folder.rglob("*") if p.is_file() and (temps or not _is_temp(p))
    }


def _log_entries(dest: Path) -> list[dict]:
    entries = []
    for log in dest.glob(f"{LOG_PREFIX}*.jsonl"):
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                pass  # the line a kill tore
    return entries


def _in_flight(dest: Path) -> set[str]:
    """Original paths of the images whose move (or move back) the log shows begun, not done."""
    begun, done = set(), set()
    for entry in _log_entries(dest):
        if entry.get("event") not in ("begin", "done"):
            continue
        if entry.get("op") == "move":
            (begun if entry["event"] == "begin" else done).add(("move", entry.get("src")))
        elif entry.get("op") == "undo-move":  # a move back: its destination is the original path
            (begun if entry["event"] == "begin" else done).add(("back", entry.get("dst")))
    return {path for _, path in begun - done}


def _check_nothing_lost(original: dict[str, str], sources: Path, dest: Path, cross_device: bool) -> int:
    """Every image once (or, across filesystems, the one in flight twice); return moves done."""
    at_source = _tree(sources, temps=False)
    for relative, digest in at_source.items():
        assert original.get(relative) == digest, f"{relative} at its source is not the original"
    temps = [p for p in sources.rglob("*") if _is_temp(p)]
    placed = []
    for path in dest.rglob("*"):
        if path.is_file() and not path.name.startswith(LOG_PREFIX):
            (temps if _is_temp(path) else placed).append(path)
    placed_hashes = Counter(_sha(path) for path in placed)
    unknown = set(placed_hashes) - set(original.values())
    assert not unknown, f"{len(unknown)} files in DEST are not whole images (partial or damaged)"
    counts = Counter(at_source.values()) + placed_hashes
    missing = [relative for relative, digest in original.items() if counts[digest] == 0]
    assert not missing, f"lost images: {missing[:5]}"
    twice = {relative for relative, digest in original.items() if counts[digest] > 1}
    if cross_device:
        in_flight = {str(Path(src).relative_to(sources)) for src in _in_flight(dest)}
        assert twice <= in_flight and len(twice) <= 1, f"duplicated beyond the move in flight: {twice}"
        assert len(temps) <= 1, f"more than one partial copy: {temps}"
    else:
        if sorting._renameat2 is None:  # no renameat2: link, then unlink; both names are one file
            twice = {r for r in twice if not os.path.samefile(sources / r, _placed_copy(dest, original[r]))}
        assert not twice, f"images at their source and in DEST at once: {sorted(twice)[:5]}"
        assert not temps, f"temporary files in a same-filesystem move: {temps}"
    return len(placed)


def _placed_copy(dest: Path, digest: str) -> Path:
    return next(p for p in dest.rglob("*") if p.is_file() and not _is_temp(p) and _sha(p) == digest)


def _sort(model: Path, sources: Path, dest: Path):
    return start(
        CLASSIFY_AND_SORT,
        str(sources),
        "--model",
        str(model),
        "--sort-into",
        str(dest),
        "--move",
        "--provider",
        "cpu",
        stdout=subprocess.DEVNULL,
    )


def _kill_when_log_reaches(process, dest: Path, size: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        logs = list(dest.glob(f"{LOG_PREFIX}*.jsonl"))
        if logs and logs[0].stat().st_size >= size:
            break
        time.sleep(0.0003)
    assert time.monotonic() < deadline, "the sort never reached its kill point"
    sigkill(process)


def _undo(dest: Path, original: dict[str, str], sources: Path) -> None:
    undone = subprocess.run(
        [sys.executable, "-m", "desktop.undo_sort_cli", str(dest)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert undone.returncode == 0, undone.stderr[-3000:]
    assert _tree(sources) == original, "undo did not put every image back where it was"
    left = [p for p in dest.rglob("*") if p.is_file() and not p.name.startswith(LOG_PREFIX)]
    assert not left, f"undo left files in DEST: {left[:5]}"


def _kill_runs(colour_model: Path, pristine: Path, work: Path, dest_root: Path, cross_device: bool, seed: int):
    original = _tree(pristine)
    sources, dest = work / "calibrate", dest_root / "calibrate"
    shutil.copytree(pristine, sources)
    finished = run_to_end(
        CLASSIFY_AND_SORT,
        str(sources),
        "--model",
        str(colour_model),
        "--sort-into",
        str(dest),
        "--move",
        "--provider",
        "cpu",
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert _check_nothing_lost(original, sources, dest, cross_device) == IMAGES
    full_log = next(dest.glob(f"{LOG_PREFIX}*.jsonl")).stat().st_size
    _undo(dest, original, sources)

    rng = random.Random(seed)
    fractions = [0.01, 0.97, *(rng.uniform(0.05, 0.95) for _ in range(2))]
    mid_run = 0
    for number, fraction in enumerate(fractions):
        sources, dest = work / f"run{number}", dest_root / f"run{number}"
        shutil.copytree(pristine, sources)
        _kill_when_log_reaches(_sort(colour_model, sources, dest), dest, int(fraction * full_log))
        moved = _check_nothing_lost(original, sources, dest, cross_device)
        mid_run += 0 < moved < IMAGES
        _undo(dest, original, sources)
    assert mid_run >= len(fractions) - 2, f"only {mid_run} of {len(fractions)} kills landed while sorting"


def test_sigkill_while_moving_loses_nothing_and_undo_restores_all(
    colour_model: Path, pristine: Path, tmp_path: Path
) -> None:
    _kill_runs(colour_model, pristine, tmp_path / "work", tmp_path / "dest", cross_device=False, seed=1)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.isdir("/dev/shm"), reason="needs a second filesystem (/dev/shm)"
)
def test_sigkill_while_moving_across_filesystems(colour_model: Path, pristine: Path, tmp_path: Path) -> None:
    dest_root = Path(tempfile.mkdtemp(prefix="convnet-sort-kill-", dir="/dev/shm"))
    try:
        if os.stat(dest_root).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("/dev/shm is on the same filesystem as the test folder")
        _kill_runs(colour_model, pristine, tmp_path / "work", dest_root, cross_device=True, seed=2)
    finally:
        shutil.rmtree(dest_root, ignore_errors=True)


# --- every crash point, one by one -----------------------------------------------------------
# Random kills rarely land in the microseconds between two steps of one move. Here a forked
# child runs the real sort (and undo) and SIGKILLs itself just before its k-th filesystem
# step (link, rename, unlink, fsync, copy), for every k: every state a crash can leave.

STEPS = ("link", "unlink", "rename", "replace", "fsync")


def _run_until_step(limit: int, action, cross_device: bool) -> bool:
    """Run `action` in a forked child killed before step `limit`; True if it finished first."""
    pid = os.fork()
    if pid == 0:  # the child: count steps, die at the chosen one
        try:
            count = 0

            def counted(function):
                def wrapper(*args, **kwargs):
                    nonlocal count
                    count += 1
                    if count == limit:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return function(*args, **kwargs)

                return wrapper

            for name in STEPS:
                setattr(os, name, counted(getattr(os, name)))
            shutil.copyfileobj = counted(shutil.copyfileobj)
            if sorting._renameat2 is not None:
                sorting._renameat2 = counted(sorting._renameat2)
            if cross_device:  # the copy, fsync, rename, delete way of a move between filesystems
                sorting._same_device = lambda a, b: False
            action()
            os._exit(0)
        except BaseException:
            import traceback

            traceback.print_exc()
            os._exit(3)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the child stopped at step {limit} hung")
        time.sleep(0.002)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return False
    assert os.WEXITSTATUS(status) == 0, f"the child failed at step {limit}"
    return True


def _small_sources(folder: Path) -> dict[str, str]:
    for index, name in enumerate(["a.png", "sub/-b é.png", "c.png"]):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"image {index} ".encode() * (20_000 + index))
    return _tree(folder)


def _results(sources: Path) -> list[BatchResult]:
    files = sorted(p for p in sources.rglob("*") if p.is_file())
    return [BatchResult(p, ["cat", "dog"][i % 2], 0.9, (("cat", 0.9),)) for i, p in enumerate(files)]


def test_moves_on_linux_are_single_atomic_renames() -> None:
    """renameat2(RENAME_NOREPLACE) is what makes a same-filesystem move one step."""
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    assert sorting._renameat2 is not None


@pytest.mark.parametrize("cross_device", [False, True], ids=["same-filesystem", "across-filesystems"])
def test_a_kill_before_any_step_of_a_sort_or_its_undo_loses_nothing(tmp_path: Path, cross_device: bool) -> None:
    find_logs, sort_into_folders, undo_moves = sorting.find_logs, sorting.sort_into_folders, sort_log.undo_moves
    steps = 0
    for limit in range(1, 200):  # killed before step `limit` of the sort
        sources, dest = tmp_path / f"s{limit}", tmp_path / f"d{limit}"
        original = _small_sources(sources)
        finished = _run_until_step(limit, lambda: sort_into_folders(_results(sources), dest, move=True), cross_device)
        if not finished:
            _check_nothing_lost(original, sources, dest, cross_device)
        report = undo_moves(find_logs(dest)[0])
        assert not report.problems, report.problems
        assert _tree(sources) == original and not [
            p for p in dest.rglob("*") if p.is_file() and not p.name.startswith(LOG_PREFIX)
        ]
        if finished:
            steps = limit
            break
    assert steps > 6, "the sort took fewer steps than moving three files needs"

    for limit in range(1, 200):  # a finished sort; its undo killed before step `limit`
        sources, dest = tmp_path / f"us{limit}", tmp_path / f"ud{limit}"
        original = _small_sources(sources)
        sort_into_folders(_results(sources), dest, move=True)
        log = find_logs(dest)[0]
        finished = _run_until_step(limit, lambda: undo_moves(log), cross_device)
        if not finished:
            _check_nothing_lost(original, sources, dest, cross_device)
        assert not undo_moves(log).problems  # undo again: it finishes the job
        assert _tree(sources) == original
        assert not [p for p in dest.rglob("*") if p.is_file() and not p.name.startswith(LOG_PREFIX)]
        if finished:
            break
    else:
        pytest.fail("undo never finished")


def test_entries_after_a_torn_line_stay_readable(tmp_path: Path) -> None:
    """A kill can tear the log's last line; what undo appends next must not be glued to it."""
    sources, dest = tmp_path / "src", tmp_path / "dest"
    original = _small_sources(sources)
    report = sorting.sort_into_folders(_results(sources), dest, move=True)
    with open(report.log_path, "a", encoding="utf-8") as handle:
        handle.write('{"event": "begin", "op": "mo')  # torn mid-line
    assert len(sort_log.undo_moves(report.log_path).restored) == 3
    lines = report.log_path.read_text(encoding="utf-8").splitlines()
    unreadable = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            unreadable.append(line)
    assert unreadable == ['{"event": "begin", "op": "mo'], "an undo entry was glued to the torn line"
    assert sum(json.loads(line)["event"] == "undone" for line in lines if line not in unreadable) == 3
    assert _tree(sources) == original


def test_undo_command_line_says_what_it_could_not_do(tmp_path: Path) -> None:
    def undo(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "desktop.undo_sort_cli", *args],
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = undo(str(tmp_path / "nowhere.jsonl"))
    assert missing.returncode == 2 and "no such sort log" in missing.stderr
    sources, dest = tmp_path / "src", tmp_path / "dest"
    _small_sources(sources)
    report = sorting.sort_into_folders(_results(sources), dest, move=True)
    taken = report.placed[0][0]
    taken.write_bytes(b"a new file now has this name")
    done = undo(str(dest))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and "taken by another file" in lines[0] and str(report.placed[0][1]) in lines[0]
    assert "moved back 2, already at source 0, missing 0" in lines[1] and "not undone 1" in lines[1]
    assert taken.read_bytes() == b"a new file now has this name"


def test_undo_trusts_a_log_no_further_than_its_folder(tmp_path: Path) -> None:
    """A log edited (or planted) to name files elsewhere cannot make undo move or delete them."""
    sources, dest = tmp_path / "src", tmp_path / "dest"
    original = _small_sources(sources)
    report = sorting.sort_into_folders(_results(sources), dest, move=True)
    precious = tmp_path / "elsewhere" / "precious.txt"
    precious.parent.mkdir()
    precious.write_text("keep me")
    log = sorting.SortLog(report.log_path)
    log.write(event="begin", op="move", src=str(tmp_path / "stolen.txt"), dst=str(precious), tmp=None)
    log.write(event="begin", op="move", src=str(sources / "x.png"), dst=str(dest / "cat" / "x.png"), tmp=str(precious))
    log.write(event="begin", op="copy", src=str(sources / "y.png"), dst=str(dest / "cat" / "y.png"), tmp=str(precious))
    log.close()
    undo = sort_log.undo_moves(report.log_path)
    assert precious.read_text() == "keep me" and not (tmp_path / "stolen.txt").exists()
    reasons = dict(undo.problems)
    assert set(reasons) == {precious, dest / "cat" / "x.png"} and "not inside the sorted folder" in reasons[precious]
    assert "not found" in reasons[dest / "cat" / "x.png"]
    assert _tree(sources) == original


def test_a_sort_into_relative_folders_undoes_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = _small_sources(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    relative = [
        BatchResult(Path("src") / r.path.relative_to(tmp_path / "src"), r.label, r.confidence, r.top_k)
        for r in _results(tmp_path / "src")
    ]
    report = sorting.sort_into_folders(relative, "dest", move=True)
    monkeypatch.chdir(tmp_path / "src")  # somewhere else
    assert len(sort_log.undo_moves(tmp_path / "dest" / report.log_path.name).restored) == 3
    assert _tree(tmp_path / "src") == original


def test_a_killed_sort_run_again_into_the_same_dest_undoes_in_full(
    colour_model: Path, pristine: Path, tmp_path: Path
) -> None:
    """The issue's case: SIGKILL mid-sort, the same sort run again into the same DEST, then
    `convnet-undo-sort DEST`. Both runs' logs are undone, so every image is back."""
    original = _tree(pristine)
    sources, dest = tmp_path / "src", tmp_path / "dest"
    shutil.copytree(pristine, sources)
    _kill_when_log_reaches(_sort(colour_model, sources, dest), dest, 30_000)
    assert 0 < _check_nothing_lost(original, sources, dest, cross_device=False) < IMAGES
    again = run_to_end(
        CLASSIFY_AND_SORT,
        str(sources),
        "--model",
        str(colour_model),
        "--sort-into",
        str(dest),
        "--move",
        "--provider",
        "cpu",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(list(dest.glob(f"{LOG_PREFIX}*.jsonl"))) == 2
    assert _check_nothing_lost(original, sources, dest, cross_device=False) == IMAGES
    _undo(dest, original, sources)
