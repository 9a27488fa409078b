"""Classifying a folder on Ray: one node against two, and Ray against the local engine.

Run with `python -m benchmarks.ray_scaling [--images N] [--rounds R]` (needs the cluster
extra). The same folder of generated 640×480 photo-like JPEGs (benchmarks.common) is
classified with the bundled digits model on the CPU provider:

- `local`: the engine convnet-classify uses without --ray (desktop.core.batch.run_batch),
  one worker per core;
- `ray 1 node`: a Ray cluster (ray.cluster_utils.Cluster, 127.0.0.1) of one node with
  one CPU, through desktop.core.ray_classify.classify_on_ray;
- `ray 2 nodes`: the same cluster with a second node of one CPU added.

Every side is timed from the first file listed to the last row handed out, with Ray
already connected (connecting costs a few seconds once per command, reported apart as
`connect`); the first Ray run of each cluster size also starts its workers (each loads and
checks the model), so it is reported apart (`cold`) from the warm rounds' median. Rounds
interleave the sides, since this machine's cores are shared. Prints a Markdown table and
one JSON line with the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep Ray on 127.0.0.1 (see the tests)

from benchmarks.common import cores, ensure_jpeg_folder, median
from desktop.core import ray_classify
from desktop.core.batch import run_batch
from desktop.core.classifier import Classifier
from desktop.core.model import load_model
from desktop.core.paths import default_model_path

NODE_OBJECT_STORE_BYTES = 200 * 2**20

# The suite's section (python -m benchmarks --only ray): title, method and rows as the
# other sections give them (benchmarks.report).
TITLE = "Ray cluster: one node, two nodes, and Ray against the local engine"
METHOD = """\
`convnet-classify --ray` on a Ray cluster started on this machine (`ray.cluster_utils.Cluster`,
127.0.0.1, nodes of one CPU each), against the local engine convnet-classify uses without
`--ray`, on the same folder of generated 640×480 JPEGs with the bundled digits model (CPU
provider, batch 32). Medians of interleaved warm rounds; the first Ray run of each cluster
size (which starts its workers) is shown apart. The two nodes share this machine's cores, so
"two nodes" cannot show real scale-out here; the overhead of Ray against the local engine on
one machine can. Needs the `cluster` extra (`pip install 'convnet-studio[cluster]'`)."""
# Ray's cost on one machine: a fixed start of its workers, then a few ms an image more than
# the local engine. Measured 2.0x the local time at 2,000 images on a busy 2-core machine.
MAX_OVERHEAD = 3.0


def rows(result: dict):
    """(rows, notes) for benchmarks.report."""
    from benchmarks.report import Row, at_most, rate, ratio, seconds

    images, medians, cold = result["images"], result["median_s"], result["cold_s"]
    table = []
    for label, value in medians.items():
        shown = f"{seconds(value)} ({rate(images / value)})"
        if label in cold:
            shown += f"; first run {seconds(cold[label])}"
        table.append(Row(f"{images} images, {label}", shown))
    two_over_one = medians["ray 1 node"] / medians["ray 2 nodes"]
    table.append(Row("2 nodes over 1 node (both on this machine's shared cores)", ratio(two_over_one)))
    overhead = medians["ray 2 nodes"] / medians["local"]
    table.append(
        at_most("Ray (2 nodes) time / local engine time, same machine", overhead, ratio(overhead), MAX_OVERHEAD, "3×")
    )
    notes = [f"Connecting to the cluster: {seconds(result['connect_s'])} once per command; {result['cores']} cores."]
    return table, notes


def _time_local(classifier: Classifier, folder: str, batch_size: int) -> tuple[float, int]:
    started = time.perf_counter()
    rows = sum(len(batch) for batch in run_batch(classifier, [folder], top_k=5, batch_size=batch_size))
    return time.perf_counter() - started, rows


def _time_ray(model, folder: str, batch_size: int) -> tuple[float, int]:
    started = time.perf_counter()
    rows = sum(
        len(batch)
        for batch in ray_classify.classify_on_ray(model, [folder], top_k=5, batch_size=batch_size, provider="cpu")
    )
    return time.perf_counter() - started, rows


def measure(images: int, rounds: int, batch_size: int) -> dict:
    ray = ray_classify.import_ray()
    from ray.cluster_utils import Cluster

    folder = str(ensure_jpeg_folder(images))
    model = load_model(default_model_path(), provider="cpu")
    classifier = Classifier(model, top_k=5)
    node = {"num_cpus": 1, "object_store_memory": NODE_OBJECT_STORE_BYTES, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    timings: dict[str, list[float]] = {"local": [], "ray 1 node": [], "ray 2 nodes": []}
    cold: dict[str, float] = {}
    try:
        started = time.perf_counter()
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        connect_s = time.perf_counter() - started
        for label, add_node in (("ray 1 node", False), ("ray 2 nodes", True)):
            if add_node:
                cluster.add_node(**node)
                cluster.wait_for_nodes(timeout=60)
            cold[label], rows = _time_ray(model, folder, batch_size)
            assert rows == images, f"{label}: {rows} rows for {images} images"
            for _ in range(rounds):
                seconds, rows = _time_local(classifier, folder, batch_size)
                assert rows == images
                timings["local"].append(seconds)
                seconds, rows = _time_ray(model, folder, batch_size)
                assert rows == images
                timings[label].append(seconds)
    finally:
        ray.shutdown()
        cluster.shutdown()
    return {
        "images": images,
        "rounds": rounds,
        "batch_size": batch_size,
        "cores": cores(),
        "connect_s": connect_s,
        "cold_s": cold,
        "median_s": {label: median(values) for label, values in timings.items()},
        "all_s": timings,
    }


def render(result: dict) -> str:
    images, medians = result["images"], result["median_s"]
    lines = [
        f"{images} JPEGs 640×480, digits-lenet5, CPU provider, batch {result['batch_size']}, "
        f"{result['cores']} cores shared; medians of {result['rounds']} interleaved rounds per Ray size "
        f"(local: {2 * result['rounds']} rounds); connecting to the cluster: {result['connect_s']:.1f} s once.",
        "",
        "| | seconds | images/s | cold first run (s) |",
        "|---|---|---|---|",
    ]
    for label, seconds in medians.items():
        cold = result["cold_s"].get(label)
        lines.append(f"| {label} | {seconds:.2f} | {images / seconds:.0f} | {'' if cold is None else f'{cold:.1f}'} |")
    lines += [
        "",
        f"2 nodes over 1 node: {medians['ray 1 node'] / medians['ray 2 nodes']:.2f}× faster; "
        f"Ray on 2 one-CPU nodes against the local engine on the same 2 cores: "
        f"{medians['ray 2 nodes'] / medians['local']:.2f}× the time.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    result = measure(args.images, args.rounds, args.batch_size)
    print(render(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
