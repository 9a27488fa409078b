"""A batch of 10,000 images survives files vanishing or turning unreadable mid-run.

While the run is going, files it has not reached yet are deleted, overwritten with
garbage, emptied, replaced by a folder, and made to refuse opening (PermissionError,
simulated at the OS boundary — `os.open` and `open` — because the tests run as root,
whom chmod does not stop). Files the workers may be reading at that very moment are
deleted too. The run must finish with exactly one result per file, a one-line error
naming each broken file, and every other image classified as its colour.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import onnx_factory
import pytest

from desktop.core.batch import BatchProgress, BatchResult, iter_image_files, run_batch
from desktop.core.classifier import Classifier
from desktop.core.model import load_model

COUNT = 10_000
COLOURS = {"red": (235, 15, 15), "green": (15, 235, 15), "blue": (15, 15, 235)}
NAMES = list(COLOURS)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 tiny PNGs, colour by index, 500 to a folder."""
    root = tmp_path_factory.mktemp("ten-thousand")
    encoded = {
        name: cv2.imencode(".png", cv2.cvtColor(onnx_factory.mostly(rgb, 16, 16), cv2.COLOR_RGB2BGR))[1].tobytes()
        for name, rgb in COLOURS.items()
    }
    for index in range(COUNT):
        folder = root / f"part {index // 500:02d}"
        if index % 500 == 0:
            folder.mkdir()
        (folder / f"{index:05d}.png").write_bytes(encoded[NAMES[index % 3]])
    return root


@pytest.fixture
def photos(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "photos"))


@pytest.fixture(scope="module")
def classifier(colour_model: Path) -> Classifier:
    return Classifier(load_model(colour_model, provider="cpu"))


def _colour(path: Path) -> str:
    return NAMES[int(path.stem) % 3]


class Sabotage:
    """Breaks files the run has not reached yet, once, from the progress callback."""

    def __init__(self, files: list[Path], monkeypatch: pytest.MonkeyPatch, when_done: int) -> None:
        self.files, self.when_done, self.fired = files, when_done, False
        self.expected: dict[Path, tuple[str, ...]] = {}  # path -> words its error must contain
        self.racy: list[Path] = []  # deleted while perhaps being read: either outcome is fine
        self.denied: set[str] = set()
        self.thread: int | None = None
        self._patch_open(monkeypatch)

    def _patch_open(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def refusing(real):
            def opener(file, *args, **kwargs):
                if isinstance(file, (str, os.PathLike)) and os.fspath(file) in self.denied:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
                return real(file, *args, **kwargs)

            return opener

        monkeypatch.setattr(os, "open", refusing(os.open))
        monkeypatch.setattr(builtins, "open", refusing(builtins.open))
        monkeypatch.setattr(io, "open", refusing(io.open))

    def __call__(self, progress: BatchProgress) -> None:
        self.thread = threading.get_ident()
        if self.fired or progress.done < self.when_done:
            return
        self.fired = True
        ahead = progress.done + 1500  # far beyond the chunks in flight
        rng = np.random.default_rng(progress.done)
        pick = iter(rng.choice(np.arange(ahead, len(self.files)), size=40, replace=False))
        for _ in range(12):
            path = self.files[next(pick)]
            path.unlink()
            self.expected[path] = ("not found",)
        for _ in range(10):
            path = self.files[next(pick)]
            path.write_bytes(rng.integers(0, 256, size=int(rng.integers(1, 5000)), dtype=np.uint8).tobytes())
            self.expected[path] = ()
        for _ in range(3):
            path = self.files[next(pick)]
            path.write_bytes(b"")
            self.expected[path] = ("empty",)
        for _ in range(3):  # a PNG cut short: the header says more than the file holds
            path = self.files[next(pick)]
            path.write_bytes(path.read_bytes()[:40])
            self.expected[path] = ()
        path = self.files[next(pick)]
        path.unlink()
        path.mkdir()
        self.expected[path] = ("folder",)
        for _ in range(2):
            path = self.files[next(pick)]
            self.denied.add(os.fspath(path))
            self.expected[path] = ("permission denied",)
        for offset in (1, 40, 90):  # possibly being read right now
            path = self.files[min(progress.done + offset, len(self.files) - 1)]
            if path not in self.expected and path.exists():
                path.unlink()
                self.racy.append(path)


def _check(results: list[BatchResult], files: list[Path], sabotage: Sabotage) -> None:
    assert sabotage.fired, "the run ended before the files could be broken"
    assert [r.path for r in results] == files, "not exactly one result per file, in order"
    for result in results:
        path = result.path
        if path in sabotage.expected:
            assert not result.ok, f"{path.name} was broken mid-run yet classified"
            assert str(path) in result.error and "\n" not in result.error, result.error
            for word in sabotage.expected[path]:
                assert word in result.error.lower(), f"{path.name}: {result.error!r} does not say {word!r}"
        elif path in sabotage.racy:
            assert result.label == _colour(path) if result.ok else "not found" in result.error, result
        else:
            assert result.ok, f"{path.name}: {result.error}"
            assert result.label == _colour(path), f"{path.name} classified as {result.label}"


def test_ten_thousand_files_with_some_vanishing_or_broken_mid_run(
    classifier: Classifier, photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = list(iter_image_files([photos]))
    assert len(files) == COUNT
    sabotage = Sabotage(files, monkeypatch, when_done=2000)
    results = [r for batch in run_batch(classifier, [photos], batch_size=32, progress=sabotage) for r in batch]
    _check(results, files, sabotage)
    assert sum(not r.ok for r in results) >= len(sabotage.expected)


def test_the_batch_view_task_survives_the_same(
    qtbot, classifier: Classifier, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Batch tab's background task over the same folder: the table gets every row,
    and the resume state keeps only the files that were classified."""
    from desktop.core.results_io import BatchState
    from desktop.qt.batch_model import BatchTask

    files = list(iter_image_files([photos]))
    sabotage = Sabotage(files, monkeypatch, when_done=2000)
    state = BatchState.load(tmp_path / "state", photos, classifier.model.info.path)
    task = BatchTask(classifier, photos, state, batch_size=32)
    rows: list[BatchResult] = []
    failures: list[str] = []
    task.signals.results.connect(rows.extend, type=_direct())
    task.signals.progress.connect(sabotage, type=_direct())
    task.signals.failed.connect(failures.append, type=_direct())
    with qtbot.waitSignal(task.signals.finished, timeout=120_000) as finished:
        worker = threading.Thread(target=task.run)
        worker.start()
    worker.join(timeout=120)
    assert finished.args == [False] and not failures
    _check(rows, files, sabotage)
    saved = BatchState.load(tmp_path / "state", photos, classifier.model.info.path)
    assert set(saved.finished) == {str(r.path) for r in rows if r.ok}


def _direct():
    from PySide6.QtCore import Qt

    return Qt.ConnectionType.DirectConnection
