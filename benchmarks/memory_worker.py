"""Resident memory while a large folder is classified: `python -m benchmarks.memory_worker ...`.

Runs in its own process so the reading is this run's memory alone. Like the Batch tab,
it keeps every BatchResult for the whole run; VmRSS is sampled each time another
`--every` images are done. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from benchmarks.common import rss_mb
from desktop.core.batch import BatchResult, run_batch
from desktop.core.classifier import Classifier
from desktop.core.model import load_model


def sample_memory(model_path: str, folder: str, every: int) -> dict[str, Any]:
    """Classify `folder`, keeping all results; RSS after load and after each `every` images."""
    model = load_model(model_path, provider="cpu")
    classifier = Classifier(model)
    after_load = rss_mb()
    results: list[BatchResult] = []
    samples: list[tuple[int, float]] = []
    next_mark = every
    started = time.perf_counter()
    for batch in run_batch(classifier, [folder]):
        results.extend(batch)
        if len(results) >= next_mark:
            samples.append((len(results), rss_mb()))
            while next_mark <= len(results):
                next_mark += every
    elapsed = time.perf_counter() - started
    if not samples or samples[-1][0] != len(results):
        samples.append((len(results), rss_mb()))
    return {
        "images": len(results),
        "failed": sum(1 for result in results if not result.ok),
        "rss_after_load_mb": after_load,
        "samples": samples,
        "seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_worker", description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--every", type=int, default=1000, help="images between memory samples")
    args = parser.parse_args(argv)
    print(json.dumps(sample_memory(args.model, args.folder, args.every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
