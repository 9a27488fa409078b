"""Classify a folder on a Ray cluster with Ray Data: the engine behind `convnet-classify --ray`.

An archive too big for one computer's batch run is spread over a cluster with the engine
the field already uses, not a home-made one. The driver lists the files exactly as a
local run does (desktop.core.batch.iter_image_files), and the workers read, decode and
classify them through the same code a local run uses (desktop.core.batch's per-chunk
worker, so convnet_common.imaging decides the resize and the bad-file messages), each
worker holding one ONNX Runtime session. Results come back tagged with the file's place
in the listing and are handed out in that order, each file exactly once: a task retried
after a worker was lost may deliver a chunk twice, and the second copy is dropped.

Ray is an optional extra (`pip install 'convnet-studio[cluster]'`): nothing here imports
it at module import time, so the app and a local `convnet-classify` never need it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convnet_common.atomic import write_bytes_atomic
from desktop.core.batch import BatchResult, ByteBudget, _slim_results, iter_image_files, worker_count
from desktop.core.classifier import Classifier
from desktop.core.model import LoadedModel, load_model

INSTALL_HINT = "install it with: pip install 'convnet-studio[cluster]'"
LOCAL = "local"  # --ray with no address: start a Ray instance on this machine
# What --ray accepts: auto (the cluster this machine belongs to), ray://HOST:PORT (Ray
# Client) or HOST:PORT (a head node's GCS), besides `local`.
_ADDRESS = re.compile(r"auto|local|ray://[^\s/]+:\d+|[A-Za-z0-9_.\-\[\]:]+:\d+")
# A file that never comes back from the cluster (should not happen: Ray Data retries
# lost tasks) is still a row, with this reason, so a run never silently drops a file.
LOST_ON_CLUSTER = "no result came back from the Ray cluster"
REACH_TIMEOUT_S = 5.0


class ClusterError(Exception):
    """Ray is missing, the cluster cannot be reached, or the run failed there: one line for the user."""


def check_address(text: str) -> str:
    """The --ray value if it names a cluster (or `local`); ValueError saying what is expected otherwise."""
    if _ADDRESS.fullmatch(text):
        return text
    raise ValueError(
        f"expected auto, ray://HOST:PORT or HOST:PORT, got {text!r}"
        " (for a local Ray instance put --ray after the paths, or write --ray=local)"
    )


def import_ray() -> Any:
    """The ray module, or ClusterError with the install line when the extra is not installed."""
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise ClusterError(f"--ray needs Ray with Ray Data, which is not installed ({error}); {INSTALL_HINT}") from None
    return ray


@dataclass(frozen=True)
class WorkerSettings:
    """What each worker needs to rebuild the driver's model: the file's bytes (workers may
    not share the driver's disk), its name, and the settings a local run would apply."""

    model_name: str
    model_bytes: bytes
    provider: str
    top_k: int
    threshold_override: float | None


class ClassifyOnWorker:
    """Ray Data's callable class: one per worker, holding one ONNX Runtime session.

    The model file is written to a private temporary folder on the worker and opened with
    load_model, so a worker checks and warms it exactly as the desktop does.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self._folder = tempfile.mkdtemp(prefix="convnet-ray-")
        path = Path(self._folder) / settings.model_name
        write_bytes_atomic(path, settings.model_bytes)
        self._model = load_model(path, provider=settings.provider)
        self._model.set_threshold_override(settings.threshold_override)
        self._classifier = Classifier(self._model, top_k=settings.top_k)
        self._top_k = settings.top_k
        self._budget = ByteBudget()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Paths travel as bytes: a name that is not valid UTF-8 survives the trip (Arrow
        # strings could not hold it) and comes back as the same str on the driver.
        paths = [Path(os.fsdecode(bytes(raw))) for raw in batch["path"]]
        results = _slim_results(self._classifier, paths, self._top_k, self._budget)
        rows = [json.dumps(_fields(result), ensure_ascii=True) for result in results]
        node = self._node_id()
        return {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "result": np.asarray(rows, dtype=object),
            "node": np.asarray([node] * len(rows), dtype=object),
        }

    @staticmethod
    def _node_id() -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_folder", ""), ignore_errors=True)


def _fields(result: BatchResult) -> dict[str, Any]:
    """A BatchResult without its path (the driver has it), as plain JSON values."""
    return {
        "label": result.label,
        "confidence": result.confidence,
        "top_k": [list(pair) for pair in result.top_k],
        "error": result.error,
        "unknown_score": result.unknown_score,
        "unknown": result.unknown,
    }


def _result(path: Path, text: str) -> BatchResult:
    fields = json.loads(text)
    top = tuple((str(name), float(p)) for name, p in fields["top_k"])
    return BatchResult(
        path, fields["label"], fields["confidence"], top, fields["error"], fields["unknown_score"], fields["unknown"]
    )


def check_reachable(address: str, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """ClusterError unless something listens at HOST:PORT (`ray://HOST:PORT` too).

    ray.init retries an address where nothing listens for minutes, printing as it goes;
    a mistyped address should cost seconds and one line. `auto` is left to Ray.
    """
    if address in (LOCAL, "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise ClusterError(f"cannot reach Ray at {address}: {error.strerror or error}") from None


def connect(ray: Any, address: str) -> None:
    """Start a quiet local Ray instance (`local`), or join the cluster at `address`."""
    check_reachable(address)
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address == LOCAL:
            ray.init(num_cpus=worker_count(), include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except Exception as error:  # noqa: BLE001 - Ray raises many kinds; the user gets one line
        raise ClusterError(f"cannot start or reach Ray at {address}: {_one_line(error)}") from None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _pool(ray: Any, provider: str) -> tuple[dict[str, float], int, str]:
    """(resources per worker, most workers, provider): one GPU each where the cluster has
    GPUs and CUDA is allowed, one CPU each otherwise (with the CPU provider, so a worker
    that reserved no GPU does not take one)."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus and provider != "cpu":
        return {"num_gpus": 1}, gpus, provider
    return {"num_cpus": 1}, max(1, int(resources.get("CPU", 1))), "cpu" if provider == "auto" else provider


def classify_on_ray(
    model: LoadedModel,
    paths: Iterable[str | os.PathLike[str]],
    *,
    address: str = LOCAL,
    top_k: int,
    batch_size: int | None = None,
    provider: str = "auto",
    rows_by_node: Counter[str] | None = None,
) -> Iterator[list[BatchResult]]:
    """Yield lists of BatchResult in the local run's file order, classified on a Ray cluster.

    `rows_by_node`, when given, counts the rows each node (Ray node id) classified, as they arrive.

    Raises ClusterError (one line) when Ray is missing, the cluster cannot be reached, or
    the run fails there. Ray is shut down afterwards if this call started or joined it.
    """
    ray = import_ray()
    for name in ("ray", "ray.data"):  # Ray's start-up and progress lines are not ours to print
        logging.getLogger(name).setLevel(logging.ERROR)
    files = list(iter_image_files(paths))
    if not files:
        return
    started_here = not ray.is_initialized()
    if started_here:
        connect(ray, address)
    try:
        yield from _run(ray, model, files, top_k=top_k, batch_size=batch_size, provider=provider, nodes=rows_by_node)
    finally:
        if started_here:
            ray.shutdown()


def _run(
    ray: Any,
    model: LoadedModel,
    files: list[Path],
    *,
    top_k: int,
    batch_size: int | None,
    provider: str,
    nodes: Counter[str] | None,
) -> Iterator[list[BatchResult]]:
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True  # rows arrive nearly in order: a small reorder buffer
    size = batch_size or model.throughput_batch_size()
    resources, most_workers, worker_provider = _pool(ray, provider)
    settings = WorkerSettings(
        model_name=model.info.path.name,
        model_bytes=model.info.path.read_bytes(),
        provider=worker_provider,
        top_k=top_k,
        threshold_override=model.threshold_override,
    )
    items = [{"index": i, "path": os.fsencode(path)} for i, path in enumerate(files)]
    dataset = ray.data.from_items(items, override_num_blocks=min(len(files), max(1, math.ceil(len(files) / size))))
    classified = dataset.map_batches(
        ClassifyOnWorker,
        fn_constructor_kwargs={"settings": settings},
        batch_size=size,
        batch_format="numpy",
        # Ray Data restarts a worker lost with its node elsewhere and retries its chunk
        # (max_restarts and max_task_retries default to -1 for a pool of workers).
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=most_workers),
        **resources,
    )
    try:
        yield from _in_file_order(files, classified.iter_batches(batch_size=None, batch_format="numpy"), nodes)
    except ClusterError:
        raise
    except Exception as error:  # noqa: BLE001 - a cluster failure is one line, the outputs are not written
        raise ClusterError(f"the Ray run failed: {_one_line(error)}") from None


def _in_file_order(
    files: list[Path], batches: Iterable[dict[str, np.ndarray]], nodes: Counter[str] | None = None
) -> Iterator[list[BatchResult]]:
    """Hand results out in listing order, each index once (a retried chunk's copy is dropped);
    indices that never came back become error rows at the end of the run."""
    waiting: dict[int, str] = {}
    next_index = 0
    for batch in batches:
        if nodes is not None:
            nodes.update(str(node) for node in batch["node"])
        for index, text in zip(batch["index"].tolist(), batch["result"]):
            if index >= next_index and index not in waiting:
                waiting[index] = str(text)
        ready: list[BatchResult] = []
        while next_index in waiting:
            ready.append(_result(files[next_index], waiting.pop(next_index)))
            next_index += 1
        if ready:
            yield ready
    rest = [
        _result(files[i], waiting[i]) if i in waiting else BatchResult(files[i], None, None, (), LOST_ON_CLUSTER)
        for i in range(next_index, len(files))
    ]
    if rest:
        yield rest
