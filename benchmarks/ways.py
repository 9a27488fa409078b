"""Section 6: the ways tried to make the folder and single-image paths fast, each measured.

Every row switches one thing off (or on) in the real engine and reruns it, in one
process, in rounds that alternate with the engine as it ships; the ratio says what
the change buys (above 1× means the shipped choice is faster). Folder runs are
`run_batch` over the section-2 JPEGs in this process (no CLI start-up), CPU provider.

- **workers**: one worker per core (shipped) vs a single worker.
- **reduced JPEG decode**: `decode_for_model` with libjpeg's ½–⅛ scaled decode
  (shipped) vs always decoding at full size.
- **folder-run session**: a second, single-threaded session shared by the workers
  (shipped) vs the workers sharing the multi-threaded interactive session.
- **batch size**: measured per model (shipped) vs a fixed batch of 32.
- **graph optimisation**: ONNX Runtime's `ORT_ENABLE_ALL` (shipped, the default) vs
  `ORT_ENABLE_BASIC`, bare single-image inference.
- **optimised-model cache**: creating the session from the `.onnx` (shipped) vs from
  a saved, already optimised copy (`SessionOptions.optimized_model_filepath`).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks.common import jpeg_files, median
from benchmarks.report import Row, rate, ratio, seconds
from convnet_common import imaging
from desktop.core import model as model_module
from desktop.core.batch import run_batch
from desktop.core.classifier import Classifier
from desktop.core.model import load_model

TITLE = "Ways tried"
METHOD = __doc__.split("\n\n", 1)[1].strip()


@contextlib.contextmanager
def _full_decode() -> Iterator[None]:
    original = imaging._reduction_flag
    imaging._reduction_flag = lambda *_args, **_kwargs: None
    try:
        yield
    finally:
        imaging._reduction_flag = original


@contextlib.contextmanager
def _shared_interactive_session(loaded: model_module.LoadedModel) -> Iterator[None]:
    original = loaded.throughput_session
    loaded.throughput_session = lambda: loaded.session  # type: ignore[method-assign]
    try:
        yield
    finally:
        loaded.throughput_session = original  # type: ignore[method-assign]


def _folder_rate(classifier: Classifier, files: list[Path], **options: Any) -> float:
    started = time.perf_counter()
    count = sum(len(chunk) for chunk in run_batch(classifier, files, **options))
    if count != len(files):
        raise RuntimeError(f"run_batch returned {count} results for {len(files)} files")
    return count / (time.perf_counter() - started)


def folder_variants(classifier: Classifier, files: list[Path]) -> dict[str, Callable[[], float]]:
    """Name -> a call that runs the folder one way and returns images/s. The first is shipped."""
    loaded = classifier.model

    def shipped() -> float:
        return _folder_rate(classifier, files)

    def one_worker() -> float:
        return _folder_rate(classifier, files, workers=1)

    def full_decode() -> float:
        with _full_decode():
            return _folder_rate(classifier, files)

    def interactive_session() -> float:
        with _shared_interactive_session(loaded):
            return _folder_rate(classifier, files)

    def batch_32() -> float:
        return _folder_rate(classifier, files, batch_size=32)

    return {
        "shipped engine": shipped,
        "one worker": one_worker,
        "full-size JPEG decode": full_decode,
        "workers share the interactive session": interactive_session,
        "fixed batch of 32": batch_32,
    }


def _inference_ms(session: ort.InferenceSession, batch: np.ndarray, runs: int) -> float:
    name = session.get_inputs()[0].name
    session.run(None, {name: batch})
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, {name: batch})
        times.append(time.perf_counter() - started)
    return median(times) * 1000.0


def session_options_ways(model_path: Path, input_size: tuple[int, int], runs: int) -> dict[str, float]:
    """Single-image inference per optimisation level, and session creation with and without a cache."""
    batch = np.zeros((1, *input_size, 3), np.uint8)
    result: dict[str, float] = {}
    for label, level in (
        ("all", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
        ("basic", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
    ):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        result[f"inference_ms_{label}"] = _inference_ms(session, batch, runs)
    with tempfile.TemporaryDirectory(prefix="convnet-bench-") as tmp:
        optimised = Path(tmp) / "optimised.onnx"
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(optimised)
        options.log_severity_level = 3
        ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        plain, cached = [], []
        for _ in range(5):
            started = time.perf_counter()
            ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
            plain.append(time.perf_counter() - started)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            started = time.perf_counter()
            ort.InferenceSession(str(optimised), options, providers=["CPUExecutionProvider"])
            cached.append(time.perf_counter() - started)
    result["session_create_s"] = median(plain)
    result["session_create_from_cache_s"] = median(cached)
    return result


def measure(model_path: Path, folder: Path, images: int, rounds: int, inference_runs: int) -> dict[str, Any]:
    """Alternating rounds of every folder variant, then the session-option comparisons."""
    files = jpeg_files(folder)[:images]
    classifier = Classifier(load_model(model_path, provider="cpu"))
    classifier.model.throughput_batch_size()  # measured once, outside the timings, as in a real run
    variants = folder_variants(classifier, files)
    names = list(variants)
    variants[names[0]]()  # warm-up: first-run allocations and the page cache
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            rates[name].append(variants[name]())
    folder_rates = {name: median(values) for name, values in rates.items()}
    shipped = folder_rates[names[0]]
    return {
        "model": model_path.name,
        "images": len(files),
        "rounds": rounds,
        "measured_batch_size": classifier.model.throughput_batch_size(),
        "folder_images_per_s": folder_rates,
        "folder_images_per_s_each": rates,
        "shipped_over_variant": {name: shipped / value for name, value in folder_rates.items() if name != names[0]},
        **session_options_ways(model_path, classifier.model.input_size, inference_runs),
    }


def rows(result: dict[str, Any]) -> tuple[list[Row], list[str]]:
    table = []
    shipped_name = next(iter(result["folder_images_per_s"]))
    for name, value in result["folder_images_per_s"].items():
        if name == shipped_name:
            table.append(Row(f"folder: {name} (batch {result['measured_batch_size']}, measured)", rate(value)))
        else:
            table.append(
                Row(f"folder: {name}", rate(value) + f"; shipped is {ratio(result['shipped_over_variant'][name])}")
            )
    all_ms, basic_ms = result["inference_ms_all"], result["inference_ms_basic"]
    table += [
        Row("one image, graph optimisation ALL (shipped)", seconds(all_ms / 1000.0)),
        Row("one image, graph optimisation BASIC", seconds(basic_ms / 1000.0) + f"; ALL is {ratio(basic_ms / all_ms)}"),
        Row("session creation from the .onnx (shipped)", seconds(result["session_create_s"])),
        Row("session creation from an optimised-model cache", seconds(result["session_create_from_cache_s"])),
    ]
    notes = [
        f"Model {result['model']}; {result['images']:,} JPEGs per folder run; {result['rounds']} alternating rounds; "
        "medians. \"shipped is N×\" = the shipped engine's rate over this variant's.",
        "The optimised-model cache is not used: it saves only the difference above once per model load "
        "(start-up is far inside its target), and ONNX Runtime warns that a saved ORT_ENABLE_ALL graph is "
        "tied to the CPU it was made on, so a cache would need invalidating per machine.",
    ]
    return table, notes
