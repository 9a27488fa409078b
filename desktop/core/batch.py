"""Classify many files and folders: the engine behind the CLI and multi-file drops.

One unreadable file must never stop a run of thousands, so read failures become
error predictions and the run goes on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from convnet_common.imaging import ImageReadError, is_image_file, load_image_rgb
from desktop.core.classifier import DEFAULT_TOP_K, Classifier, Prediction
from desktop.core.model import first_line

ProgressCallback = Callable[[int, int], None]


def _walk_folder(folder: Path, visited: set[str]) -> Iterator[Path]:
    real = os.path.realpath(folder)
    if real in visited:  # a symlink loop, or the same folder named twice
        return
    visited.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            yield from _walk_folder(path, visited)
        elif is_image_file(path):
            yield path


def iter_image_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand folders recursively (sorted, image extensions only); yield named files as given.

    A file named directly is yielded even if it does not look like an image (or does
    not exist), so the caller reports an error for it instead of silently skipping it.
    """
    visited: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from _walk_folder(path, visited)
        else:
            yield path


def _read(path: Path) -> np.ndarray | str:
    try:
        return load_image_rgb(path)
    except ImageReadError as error:
        return str(error)


def classify_paths(
    classifier: Classifier,
    paths: Iterable[str | os.PathLike[str]],
    top_k: int = DEFAULT_TOP_K,
    batch_size: int = 16,
    cancel: threading.Event | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[Prediction]:
    """Yield one Prediction per file, in order, classifying `batch_size` images per run.

    Decoding runs on a few threads (OpenCV releases the GIL). Setting `cancel` stops
    the run after the current batch; `progress(done, total)` is called after each batch.
    """
    files = list(iter_image_files(paths))
    total = len(files)
    batch_size = max(1, batch_size)
    done = 0
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for start in range(0, total, batch_size):
            if cancel is not None and cancel.is_set():
                return
            chunk = files[start : start + batch_size]
            decoded = list(pool.map(_read, chunk))
            good = [(i, image) for i, image in enumerate(decoded) if isinstance(image, np.ndarray)]
            results: dict[int, Prediction] = {}
            if good:
                try:
                    predictions = classifier.classify_batch(
                        [image for _, image in good], [chunk[i] for i, _ in good], top_k
                    )
                except Exception as error:  # noqa: BLE001 - a runtime failure is reported per file
                    message = f"inference failed: {first_line(error)}"
                    predictions = [Prediction.failed(chunk[i], message) for i, _ in good]
                results = {i: prediction for (i, _), prediction in zip(good, predictions)}
            for i, item in enumerate(decoded):
                yield results[i] if i in results else Prediction.failed(chunk[i], str(item))
            done += len(chunk)
            if progress is not None:
                progress(done, total)
