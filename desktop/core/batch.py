"""Classify many files and folders: the engine behind the CLI and multi-file drops.

One unreadable file must never stop a run of thousands, so read failures become
error predictions and the run goes on.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from convnet_common.folder_walk import FolderKey, UnreadableFolder, walk_files
from convnet_common.imaging import ImageReadError, is_image_file
from desktop.core.classifier import DEFAULT_TOP_K, Classifier, Prediction
from desktop.core.messages import first_line

ProgressCallback = Callable[[int, int], None]
T = TypeVar("T")
# Results of a folder run are handed to the caller at most this often: often enough
# for a smooth progress bar, rarely enough that a table insert per yield stays cheap.
_YIELD_INTERVAL_S = 0.05


def _walk_folder(folder: Path, visited: set[FolderKey]) -> Iterator[Path]:
    """The shared iterative walker (convnet_common.folder_walk): no recursion limit, linear in depth.

    A folder that cannot be listed is yielded as its own path, so the caller reports it
    (one error line or row) instead of silently losing what is inside.
    """
    for item in walk_files(folder, is_image_file, follow_folder_links=True, visited=visited):
        yield item.path if isinstance(item, UnreadableFolder) else item


def iter_image_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand folders recursively (sorted, image extensions only); yield named files as given.

    A file named directly is yielded even if it does not look like an image (or does
    not exist), so the caller reports an error for it instead of silently skipping it.
    """
    visited: set[FolderKey] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from _walk_folder(path, visited)
        else:
            yield path


# What the workers of one run may hold at once in file bytes and decoded pixels. An
# ordinary photo costs a few tens of MB, so normal batches never wait; a file larger than
# the whole budget is read and decoded alone. Without it, four 1 GB files on four cores
# are all in memory together (2.4 GB RSS on two cores).
BYTES_IN_FLIGHT = 768 * 2**20
# A file's cost: its bytes, the decoded picture (as large as the file for BMP, PNM and
# uncompressed TIFF) and the colour-converted copy made from it.
_COST_PER_FILE_BYTE = 3


class ByteBudget:
    """A counting limit on bytes in flight across the worker threads of one run."""

    def __init__(self, limit: int = BYTES_IN_FLIGHT) -> None:
        self.limit = limit
        self._used = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, cost: int) -> Iterator[None]:
        """Wait until `cost` fits (or nothing else is held), hold it for the block."""
        cost = max(0, min(cost, self.limit))
        with self._changed:
            while self._used and self._used + cost > self.limit:
                self._changed.wait()
            self._used += cost
        try:
            yield
        finally:
            with self._changed:
                self._used -= cost
                self._changed.notify_all()


def _file_cost(path: Path) -> int:
    try:
        return os.stat(path).st_size * _COST_PER_FILE_BYTE
    except (OSError, ValueError):
        return 0  # read_file says why it cannot be read


def _prepare(
    classifier: Classifier, path: Path, keep_image: bool, budget: ByteBudget | None = None
) -> tuple[np.ndarray | None, np.ndarray] | str:
    try:
        if budget is None:
            return classifier.read_file(path, keep_image)
        with budget.hold(_file_cost(path)):  # released once only the small model input is left
            return classifier.read_file(path, keep_image)
    except ImageReadError as error:
        return str(error)


def _classify_files(
    classifier: Classifier,
    chunk: list[Path],
    top_k: int,
    *,
    keep_images: bool,
    throughput: bool,
    budget: ByteBudget | None = None,
) -> list[Prediction]:
    """Decode and classify one chunk of files on the calling (worker) thread.

    Each worker does both halves for its own chunk: with one worker per core that keeps
    every core busy without a hand-off between a decode stage and an inference stage.
    """
    prepared = [_prepare(classifier, path, keep_images, budget) for path in chunk]
    good = [i for i, item in enumerate(prepared) if not isinstance(item, str)]
    results: dict[int, Prediction] = {}
    if good:
        inputs = np.stack([prepared[i][1] for i in good])
        images = [prepared[i][0] for i in good]
        try:
            predictions = classifier.classify_batch(
                images, [chunk[i] for i in good], top_k, inputs=inputs, throughput=throughput
            )
        except Exception as error:  # noqa: BLE001 - a runtime failure is reported per file
            message = f"inference failed: {first_line(error)}"
            predictions = [Prediction.failed(chunk[i], message) for i in good]
        results = dict(zip(good, predictions))
    return [results[i] if i in results else Prediction.failed(chunk[i], str(prepared[i])) for i in range(len(chunk))]


def worker_count() -> int:
    """Workers for a folder run: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _in_workers(
    work: Callable[[list[Path]], T],
    files: list[Path],
    size: int,
    workers: int,
    depth: int,
    cancel: threading.Event | None,
) -> Iterator[tuple[list[Path], T]]:
    """Run `work` over chunks of `size` files on `workers` threads, yielding results in file order.

    At most `depth` chunks are in flight, so memory does not grow with the folder. Close
    the generator (callers use contextlib.closing) to stop: the pool is shut down then,
    queued chunks dropped and running ones finished.
    """
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="classify")
    pending: deque[tuple[list[Path], Future[T]]] = deque()
    source = _chunks(files, size)
    try:
        for chunk in source:
            pending.append((chunk, pool.submit(work, chunk)))
            if len(pending) >= depth:
                break
        while pending:
            if cancel is not None and cancel.is_set():
                return
            chunk, future = pending.popleft()
            result = future.result()
            following = next(source, None)
            if following is not None:
                pending.append((following, pool.submit(work, following)))
            yield chunk, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _chunks(files: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(files), size):
        yield files[start : start + size]


def classify_paths(
    classifier: Classifier,
    paths: Iterable[str | os.PathLike[str]],
    top_k: int = DEFAULT_TOP_K,
    batch_size: int | None = None,
    cancel: threading.Event | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[Prediction]:
    """Yield one Prediction per file, in order, keeping each full image for display.

    Files are decoded and classified by one worker per core (see run_batch). Setting
    `cancel` stops after the current chunk; `progress(done, total)` follows each chunk.
    """
    files = list(iter_image_files(paths))
    total = len(files)
    if not files:
        return
    if total == 1:  # one dropped image: no pool to start, the interactive session
        yield from _classify_files(classifier, files, top_k, keep_images=True, throughput=False)
        if progress is not None:
            progress(1, 1)
        return
    size = batch_size or classifier.model.throughput_batch_size()
    workers = worker_count()
    done = 0
    budget = ByteBudget()
    work = lambda chunk: _classify_files(  # noqa: E731 - a one-line closure handed to the worker pool
        classifier, chunk, top_k, keep_images=True, throughput=True, budget=budget
    )
    with closing(_in_workers(work, files, size, workers, workers + 1, cancel)) as chunks:
        for chunk, predictions in chunks:
            yield from predictions
            done += len(chunk)
            if progress is not None:
                progress(done, total)


# --- folder batches: slim results, progress, throughput ------------------------------------


@dataclass(frozen=True)
class BatchResult:
    """What a batch keeps per file: no pixels and no maps, so huge folders stay flat in memory.

    `unknown_score` / `unknown` as in Prediction: None for a model without the score.
    """

    path: Path
    label: str | None
    confidence: float | None
    top_k: tuple[tuple[str, float], ...]
    error: str | None = None
    unknown_score: float | None = None
    unknown: bool | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def from_prediction(cls, prediction: Prediction) -> BatchResult:
        path = prediction.path if prediction.path is not None else Path()
        if prediction.error is not None or not prediction.top_k:
            return cls(path, None, None, (), prediction.error or "no prediction")
        top = tuple((str(name), float(p)) for name, p in prediction.top_k)
        return cls(path, top[0][0], top[0][1], top, None, prediction.unknown_score, prediction.unknown)

    def judged(self, threshold: float | None) -> BatchResult:
        """This result judged against another threshold (the user moved it): same score, new verdict."""
        if self.unknown_score is None or threshold is None:
            return self
        return replace(self, unknown=bool(self.unknown_score > threshold))


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


def _slim_results(classifier: Classifier, chunk: list[Path], top_k: int, budget: ByteBudget) -> list[BatchResult]:
    # Converted on the worker, so no pixels or maps outlive the chunk.
    predictions = _classify_files(classifier, chunk, top_k, keep_images=False, throughput=True, budget=budget)
    return [BatchResult.from_prediction(p) for p in predictions]


def run_batch(
    classifier: Classifier,
    paths: Iterable[str | os.PathLike[str]],
    *,
    skip: Collection[str] = (),
    top_k: int = DEFAULT_TOP_K,
    batch_size: int | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
    workers: int | None = None,
    bytes_in_flight: int = BYTES_IN_FLIGHT,
) -> Iterator[list[BatchResult]]:
    """Classify every image under `paths`, yielding lists of slim results in file order.

    One worker per core decodes (at reduced size for large JPEGs) and classifies its
    own chunk of `batch_size` files (None: measured for this model, see
    LoadedModel.throughput_batch_size). Results are handed out about every 50 ms.
    Files whose str(path) is in `skip` (finished in an earlier run) are not read at all.
    Setting `cancel` stops after the current chunk; everything yielded so far stays valid.
    Files are read and decoded within `bytes_in_flight` across all workers (ByteBudget),
    so very large files do not multiply memory by the number of cores.
    """
    skipped = set(skip)
    files = [path for path in iter_image_files(paths) if str(path) not in skipped]
    total = len(files)
    if progress is not None:
        progress(BatchProgress(0, total, 0.0))
    if not files:
        return
    size = batch_size or classifier.model.throughput_batch_size()
    workers = workers or worker_count()
    started = last_yield = time.perf_counter()
    done = 0
    ready: list[BatchResult] = []
    budget = ByteBudget(bytes_in_flight)
    work = lambda chunk: _slim_results(classifier, chunk, top_k, budget)  # noqa: E731 - a one-line closure handed to the worker pool
    with closing(_in_workers(work, files, size, workers, workers * 2, cancel)) as chunks:
        for chunk, results in chunks:
            ready.extend(results)
            done += len(chunk)
            now = time.perf_counter()
            if now - last_yield >= _YIELD_INTERVAL_S or done == total:
                yield ready
                ready, last_yield = [], now
                if progress is not None:
                    progress(BatchProgress(done, total, now - started))
    if ready:  # cancelled with results not yet handed out: they are valid, hand them out
        yield ready
        if progress is not None:
            progress(BatchProgress(done, total, time.perf_counter() - started))
