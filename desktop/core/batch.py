"""Classify many files and folders: the engine behind the CLI and multi-file drops.

One unreadable file must never stop a run of thousands, so read failures become
error predictions and the run goes on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    done = 0
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for chunk, decoded in _decoded_chunks(files, max(1, batch_size), pool, cancel):
            yield from _classify_chunk(classifier, chunk, decoded, top_k)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
            if cancel is not None and cancel.is_set():
                return


# --- folder batches: slim results, prefetching decode, throughput --------------------------


@dataclass(frozen=True)
class BatchResult:
    """What a batch keeps per file: no pixels and no maps, so huge folders stay flat in memory."""

    path: Path
    label: str | None
    confidence: float | None
    top_k: tuple[tuple[str, float], ...]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def from_prediction(cls, prediction: Prediction) -> BatchResult:
        path = prediction.path if prediction.path is not None else Path()
        if prediction.error is not None or not prediction.top_k:
            return cls(path, None, None, (), prediction.error or "no prediction")
        top = tuple((str(name), float(p)) for name, p in prediction.top_k)
        return cls(path, top[0][0], top[0][1], top)


@dataclass(frozen=True)
class BatchProgress:
    """Progress of a run: files done of total (skipped resumed files excluded), rate and time left."""

    done: int
    total: int
    elapsed_s: float

    @property
    def images_per_second(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.images_per_second
        return (self.total - self.done) / rate if rate > 0 else None


def _decoded_chunks(
    files: list[Path], batch_size: int, pool: ThreadPoolExecutor, cancel: threading.Event | None
) -> Iterator[tuple[list[Path], list[np.ndarray | str]]]:
    """Yield (chunk, decoded) while the next chunk is already decoding, so decode overlaps inference.

    At most two chunks of decoded pixels exist at once, whatever the folder size.
    """
    starts = range(0, len(files), batch_size)
    pending = None
    for start in starts:
        chunk = files[start : start + batch_size]
        submitted = (chunk, [pool.submit(_read, path) for path in chunk])
        if pending is not None:
            if cancel is not None and cancel.is_set():
                break
            yield pending[0], [future.result() for future in pending[1]]
        pending = submitted
    if pending is not None and not (cancel is not None and cancel.is_set()):
        yield pending[0], [future.result() for future in pending[1]]


def _classify_chunk(
    classifier: Classifier, chunk: list[Path], decoded: list[np.ndarray | str], top_k: int
) -> list[Prediction]:
    good = [(i, image) for i, image in enumerate(decoded) if isinstance(image, np.ndarray)]
    results: dict[int, Prediction] = {}
    if good:
        try:
            predictions = classifier.classify_batch([image for _, image in good], [chunk[i] for i, _ in good], top_k)
        except Exception as error:  # noqa: BLE001 - a runtime failure is reported per file
            message = f"inference failed: {first_line(error)}"
            predictions = [Prediction.failed(chunk[i], message) for i, _ in good]
        results = {i: prediction for (i, _), prediction in zip(good, predictions)}
    return [results[i] if i in results else Prediction.failed(chunk[i], str(item)) for i, item in enumerate(decoded)]


def run_batch(
    classifier: Classifier,
    paths: Iterable[str | os.PathLike[str]],
    *,
    skip: Collection[str] = (),
    top_k: int = DEFAULT_TOP_K,
    batch_size: int = 16,
    cancel: threading.Event | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
    decode_threads: int | None = None,
) -> Iterator[list[BatchResult]]:
    """Classify every image under `paths`, yielding one list of slim results per batch.

    Files whose str(path) is in `skip` (finished in an earlier run) are not read at all.
    Setting `cancel` stops after the current batch; everything yielded so far stays valid.
    """
    skipped = set(skip)
    files = [path for path in iter_image_files(paths) if str(path) not in skipped]
    total = len(files)
    if progress is not None:
        progress(BatchProgress(0, total, 0.0))
    threads = decode_threads or min(4, max(2, os.cpu_count() or 1))
    started = time.perf_counter()
    done = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for chunk, decoded in _decoded_chunks(files, max(1, batch_size), pool, cancel):
            predictions = _classify_chunk(classifier, chunk, decoded, top_k)
            del decoded
            yield [BatchResult.from_prediction(prediction) for prediction in predictions]
            done += len(chunk)
            if progress is not None:
                progress(BatchProgress(done, total, time.perf_counter() - started))
            if cancel is not None and cancel.is_set():
                return
