"""Atomic writes, proven by killing the writer: after any SIGKILL the target holds one
complete version (the old or the new one), never a mix or a truncated file, and the
temporary file a killed writer leaves is recognisable and removed by the next write.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kill_helpers import HALF_WRITE_KILL, run_to_end, sigkill, start

from convnet_common.atomic import leftover_temp_files, remove_stale_temp_files, write_bytes_atomic

SIZE = 24 * 1024 * 1024
KILLS = 20


def payload(version: int, size: int = SIZE) -> bytes:
    """Version `version` of the big file: a header, a version-specific body, a trailer."""
    header = f"ATOMIC-TEST version={version:010d} size={size}\n".encode()
    trailer = f"\nEND version={version:010d}\n".encode()
    block = hashlib.sha256(str(version).encode()).digest() * 32
    body_size = size - len(header) - len(trailer)
    body = (block * (body_size // len(block) + 1))[:body_size]
    return header + body + trailer


def version_of(data: bytes) -> int:
    """The version a complete file holds; fails the test on anything else."""
    assert data.startswith(b"ATOMIC-TEST version="), f"not a complete version: starts {data[:40]!r}"
    version = int(data[20:30])
    assert data == payload(version), f"version {version} is damaged ({len(data)} bytes)"
    return version


# The writer alternates the two ways in: write_bytes_atomic, and atomic_path with a
# handle written in 1 MB pieces (how Keras, matplotlib and CSV writers use it).
WRITER = r"""
import sys
from pathlib import Path
from convnet_common.atomic import atomic_path, write_bytes_atomic
from test_atomic_kill import payload
target, version = Path(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
while True:
    data = payload(version)
    if version % 2:
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            for start in range(0, len(data), 1 << 20):
                handle.write(data[start:start + (1 << 20)])
    else:
        write_bytes_atomic(target, data)
    print(version, flush=True)
    version += 1
"""


def _seconds_per_write(target: Path) -> float:
    process = start(WRITER, str(target), "1")
    try:
        assert process.stdout.readline().strip() == "ready"
        process.stdout.readline()
        started = time.monotonic()
        for _ in range(3):
            process.stdout.readline()
        return (time.monotonic() - started) / 3
    finally:
        sigkill(process)


def test_sigkill_at_random_moments_leaves_old_or_new_never_partial(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    per_write = _seconds_per_write(target)
    acknowledged = version_of(target.read_bytes())
    rng = random.Random(6)
    mid_write = kills = 0
    # KILLS kills, and more (up to 4 x) until a quarter of them landed inside a write: on a
    # loaded machine a write takes longer than measured, and early kills hit nothing.
    while kills < KILLS or (mid_write < KILLS // 4 and kills < 4 * KILLS):
        kills += 1
        process = start(WRITER, str(target), str(acknowledged + 1))
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 2.5 * per_write))
        sigkill(process)
        printed = [int(line) for line in process.stdout.read().split()]
        last_done = max(printed, default=acknowledged)
        found = version_of(target.read_bytes())
        # Every write the writer reported finished is there; at most one more landed
        # between its rename and its report.
        assert found in (last_done, last_done + 1), (found, last_done)
        leftovers = leftover_temp_files(target)
        mid_write += bool(leftovers)
        others = {p for p in tmp_path.iterdir() if p != target} - set(leftovers)
        assert not others, f"unrecognisable files beside the target: {sorted(others)}"
        acknowledged = found
    # Most kills land inside a write (it is most of the loop): the test really hit them.
    assert mid_write >= KILLS // 4, f"only {mid_write} of {kills} kills landed mid-write"
    write_bytes_atomic(target, payload(acknowledged + 1, 1000))
    assert leftover_temp_files(target) == [], "a dead writer's temporary file survived the next write"
    assert sorted(tmp_path.iterdir()) == [target]


# --- the project's own writers --------------------------------------------------------------
# Each writer is a script fragment that saves version `version` of its file.

ROWS = 15_000

RESULTS = f"""
from pathlib import Path
from desktop.core.batch import BatchResult
results = [BatchResult(Path(f"/photos/v{{version}}/{{i:06d}}.png"), "red", 0.5, (("red", 0.5), ("blue", 0.25)))
           for i in range({ROWS})]
"""


def _settings_writer(target: Path) -> str:
    return f"""
from pathlib import Path
from desktop.core.settings import Settings
settings = Settings(Path({str(target)!r}))
settings.set("last_image_dir", f"v{{version}}")
settings._extra["padding"] = f"v{{version}}" * 50_000
error = settings.save()
assert error is None, error
"""


def _settings_version(target: Path) -> int:
    data = json.loads(target.read_text(encoding="utf-8"))
    version = int(data["last_image_dir"][1:])
    assert data["padding"] == f"v{version}" * 50_000
    return version


def _csv_writer(target: Path) -> str:
    return RESULTS + (
        "from desktop.core.exporters import ExportContext, exporter\n"
        f"exporter('csv').write({str(target)!r}, results, ExportContext())\n"
    )


def _csv_version(target: Path) -> int:
    with open(target, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == ROWS and rows[-1]["path"].endswith(f"{ROWS - 1:06d}.png")
    versions = {Path(row["path"]).parent.name for row in rows}
    assert len(versions) == 1, f"rows of several versions: {versions}"
    return int(versions.pop()[1:])


def _json_writer(target: Path) -> str:
    return RESULTS + (
        "from desktop.core.exporters import ExportContext, exporter\n"
        f"exporter('json').write({str(target)!r}, results, ExportContext(model='m'))\n"
    )


def _json_version(target: Path) -> int:
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["count"] == ROWS == len(document["results"])
    versions = {Path(item["path"]).parent.name for item in document["results"]}
    assert len(versions) == 1, f"results of several versions: {versions}"
    return int(versions.pop()[1:])


def _state_writer(target: Path) -> str:
    return (
        RESULTS
        + f"""
from desktop.core.results_io import BatchState
state = BatchState("/photos", f"model-v{{version}}", Path({str(target)!r}))
state.add(results)
state.save()
"""
    )


def _state_version(target: Path) -> int:
    document = json.loads(target.read_text(encoding="utf-8"))
    version = int(document["model"].rsplit("v", 1)[1])
    assert len(document["finished"]) == ROWS
    assert all(f"/v{version}/" in item["path"] for item in document["finished"])
    return version


WRITERS = {
    "settings": (_settings_writer, _settings_version),
    "results-csv": (_csv_writer, _csv_version),
    "results-json": (_json_writer, _json_version),
    "batch-state": (_state_writer, _state_version),
}


def _once(fragment: str, version: int) -> str:
    return f"version = {version}\n{fragment}"


def _looping(fragment: str) -> str:
    """Save version argv[1], argv[1]+1, ... for ever, printing each one once it is saved."""
    return (
        "import itertools, sys\nprint('ready', flush=True)\nfor version in itertools.count(int(sys.argv[1])):\n"
        + textwrap.indent(fragment.strip() + "\nprint(version, flush=True)\n", "    ")
    )


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_project_writer_killed_half_way_through_a_write_keeps_the_old_file(tmp_path: Path, name: str) -> None:
    """The writer SIGKILLs itself after writing half its bytes: the worst moment, every time."""
    make_fragment, read_version = WRITERS[name]
    target = tmp_path / ("settings.json" if name == "settings" else f"out-{name}")
    fragment = make_fragment(target)
    done = run_to_end(_once(fragment, 1))
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_version(target) == 1

    killed = run_to_end(HALF_WRITE_KILL + f"KILL_IN = {str(tmp_path)!r}\n" + _once(fragment, 2))
    assert killed.returncode == -9, f"the writer was not killed mid-write: {killed.stderr[-2000:]}"
    assert read_version(target) == 1, "the old file was damaged by a write killed half-way"
    leftovers = leftover_temp_files(target)
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0, "the half-written data went elsewhere"
    assert set(tmp_path.iterdir()) == {target, *leftovers}

    done = run_to_end(_once(fragment, 3))
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_version(target) == 3
    assert leftover_temp_files(target) == [], "the next write did not clean up the dead writer's file"


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_project_writer_killed_at_random_moments(tmp_path: Path, name: str) -> None:
    make_fragment, read_version = WRITERS[name]
    target = tmp_path / f"out-{name}"
    fragment = make_fragment(target)
    assert run_to_end(_once(fragment, 0)).returncode == 0
    rng = random.Random(name)
    known = 0
    for _ in range(3):
        process = start(_looping(fragment), str(known + 1))
        assert process.stdout.readline().strip() == "ready", process.stderr.read()[-2000:]
        time.sleep(rng.uniform(0.05, 0.5))
        sigkill(process)
        printed = [int(line) for line in process.stdout.read().split()]
        last_done = max(printed, default=known)
        found = read_version(target)
        assert found in (last_done, last_done + 1), (found, last_done)
        known = found


# --- what the clean-up may and may not touch --------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_cleanup_removes_only_this_modules_temp_files_of_dead_writers(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    names = {
        f".epoch-0003.weights.h5.{dead}.ab_d1234.partial.weights.h5": False,  # a dead writer's: removed
        f".best.keras.{dead}.zz9_8765.partial.keras": False,
        f".best.keras.{alive}.abcd1234.partial.keras": True,  # a live writer's: kept
        f".notes.{dead}.abcd1234.partial.txt": True,  # suffix not the target's: not ours
        f".best.keras.{dead}.abc.partial.keras": True,  # random part of the wrong length
        "best.keras.partial": True,
        "photo.partial.jpg": True,
    }
    for name in names:
        (tmp_path / name).write_text("x")
    removed = {path.name for path in remove_stale_temp_files(tmp_path)}
    assert removed == {name for name, kept in names.items() if not kept}
    assert {p.name for p in tmp_path.iterdir()} == {name for name, kept in names.items() if kept}


def test_a_symlinked_target_is_replaced_where_it_points(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "settings.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "settings.json"
    os.symlink(real, link)
    write_bytes_atomic(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_a_long_target_name_still_gets_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / ("é" * 110 + ".weights.h5")  # 231 bytes: the temp name must be shortened
    write_bytes_atomic(target, b"data")
    assert target.read_bytes() == b"data" and sorted(tmp_path.iterdir()) == [target]
