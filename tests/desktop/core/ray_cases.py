"""convnet-classify --ray on a real two-node Ray cluster started on this machine (127.0.0.1).

The cluster (ray.cluster_utils.Cluster: a head and one worker node, one CPU and an 80 MB
object store each) is started once for the module and always shut down. The rows must
equal a local run's, byte for byte in the CSV and value for value in the JSON, bad files
and their messages included, in the same order; a worker node removed while the dataset
is running must neither lose nor duplicate a row. Without Ray the command says how to
install it, in one line.

Run by tests/desktop/core/test_ray_classify.py in a child pytest, never in the suite's own
process: Ray Data leaves a daemon thread in the driver (its cluster-metrics poller) that
outlives ray.shutdown() and once deadlocked a later Qt test of the same process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.classify_cli import main
from desktop.core import ray_classify
from desktop.core.batch import iter_image_files, run_batch
from desktop.core.classifier import Classifier
from desktop.core.model import load_model
from desktop.core.paths import default_model_path

# Ray turns a loopback address into this machine's network address before connecting, and
# the nodes here listen on 127.0.0.1 only; this (read when ray is imported) keeps it local.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray", reason="the cluster extra: pip install -e '.[cluster]'")
from ray.cluster_utils import Cluster  # noqa: E402 - only once Ray is known to be there

MODEL = default_model_path()
OBJECT_STORE_BYTES = 80 * 2**20
REPO = Path(__file__).resolve().parents[3]


def _draw_digit(rng: np.random.Generator, digit: int) -> np.ndarray:
    """A digit drawn at a random size, place and colour on a random background."""
    size = int(rng.integers(28, 120))
    image = np.full((size, size, 3), rng.integers(0, 90, 3), dtype=np.uint8)
    scale = size / 40
    origin = (int(size * rng.uniform(0.15, 0.35)), int(size * rng.uniform(0.7, 0.85)))
    colour = tuple(int(c) for c in rng.integers(160, 256, 3))
    cv2.putText(image, str(digit), origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, max(1, int(2 * scale)))
    return image


def make_archive(folder: Path, count: int, seed: int = 16) -> Path:
    """`count` drawn digits (JPEG and PNG, some nested), plus broken files the way users have them."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        suffix = ".jpg" if i % 3 else ".png"
        path = folder / f"part{i % 4}" / f"digit-{i:04d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), _draw_digit(rng, i % 10))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "part1" / "notes-not-a-picture.png").write_text("I am not an image")
    whole = (folder / "part0" / "digit-0000.png").read_bytes()
    (folder / "part2" / "truncated.png").write_bytes(whole[: len(whole) // 3])
    jpeg = (folder / "part1" / "digit-0001.jpg").read_bytes()
    (folder / "part3" / "cut-short.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    # A name that is not UTF-8 must come back from the workers as the same name.
    os.rename(folder / "part3" / "digit-0003.png", os.fsencode(folder / "part3") + b"/caf\xe9.png")
    return folder


ATTEMPTS = 3


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_archive(tmp_path_factory.mktemp("archive"), 40)


@pytest.fixture(scope="module")
def cluster():
    """A head and one worker node on 127.0.0.1, one CPU each; shut down whatever happens."""
    started = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "object_store_memory": OBJECT_STORE_BYTES,
            "include_dashboard": False,
            "node_ip_address": "127.0.0.1",
        },
    )
    try:
        started.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES, node_ip_address="127.0.0.1")
        started.wait_for_nodes(timeout=60)
        yield started
    finally:
        if ray.is_initialized():
            ray.shutdown()
        started.shutdown()


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_rows_equal_the_local_run_bad_files_included(archive: Path, cluster, tmp_path: Path, capsys) -> None:
    common = [str(archive), "--model", str(MODEL), "--provider", "cpu", "--batch-size", "4"]
    local_code, local_err = _run_cli(
        [*common, "--csv", str(tmp_path / "local.csv"), "--json", str(tmp_path / "local.json")], capsys
    )
    ray_code, ray_err = _run_cli(
        [*common, "--csv", str(tmp_path / "ray.csv"), "--json", str(tmp_path / "ray.json"), "--ray", cluster.address],
        capsys,
    )
    assert not ray.is_initialized(), "the command leaves Ray as it found it"
    assert ray_code == local_code == 1  # bad files: exit status 1 both ways
    local_csv, ray_csv = (tmp_path / "local.csv").read_bytes(), (tmp_path / "ray.csv").read_bytes()
    assert ray_csv == local_csv
    rows = local_csv.decode("utf-8", "surrogateescape").splitlines()
    assert len(rows) == 1 + 40 + 4  # header, drawn images, broken files (the renamed one still an image)
    assert sum(',"","","",' in row for row in rows) == 4, "four error rows"
    local_json, ray_json = (json.loads((tmp_path / name).read_bytes()) for name in ("local.json", "ray.json"))
    assert local_json.pop("exported_at") and ray_json.pop("exported_at")  # when each was written
    assert ray_json == local_json and len(ray_json["results"]) == 44
    # The same failure lines on stderr, in the same order (the summary's timing differs).
    assert [line for line in ray_err.splitlines() if line.startswith("convnet-classify: ")] == [
        line for line in local_err.splitlines() if line.startswith("convnet-classify: ")
    ]
    assert "classified 40 images, 4 failed" in ray_err


def test_worker_node_removed_mid_run_loses_and_duplicates_nothing(tmp_path_factory, cluster) -> None:
    """The extra node is removed (raylet and workers killed) once rows it classified have
    come back, so it was working when it went; its chunks in flight must run again elsewhere.

    Whether the new node gets work before the others finish is up to Ray's scheduler (and a
    busy machine): a run where it got none, or only at the very end, proves nothing, so the
    scenario is tried again on a fresh node, up to ATTEMPTS times. Every run, whatever
    happened to the node, must give exactly the local rows."""
    folder = make_archive(tmp_path_factory.mktemp("bigger"), 300, seed=7)
    model = load_model(MODEL, provider="cpu")
    expected = [r for rs in run_batch(Classifier(model, top_k=3), [folder], top_k=3, batch_size=2) for r in rs]
    mid_run = []
    for _attempt in range(ATTEMPTS):
        doomed = cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes(timeout=60)
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        rows_by_node: Counter[str] = Counter()
        got: list = []
        removed_after = None
        try:
            batches = ray_classify.classify_on_ray(
                model, [folder], top_k=3, batch_size=2, provider="cpu", rows_by_node=rows_by_node
            )
            for batch in batches:
                got.extend(batch)
                if removed_after is None and rows_by_node[doomed.node_id]:
                    removed_after = len(got)
                    cluster.remove_node(doomed, allow_graceful=False)
        finally:
            ray.shutdown()
        if removed_after is None:
            cluster.remove_node(doomed)
        assert [r.path for r in got] == [r.path for r in expected] == list(iter_image_files([folder]))
        assert got == expected
        if removed_after is not None and removed_after < len(expected):
            mid_run.append(removed_after)
            break
    assert mid_run, f"in {ATTEMPTS} runs the extra node was never removed while rows were still to come"


def test_without_ray_one_line_says_how_to_install(archive: Path, tmp_path: Path) -> None:
    """Ray hidden from a fresh interpreter (a None entry in sys.modules makes its import fail)."""
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from desktop.classify_cli import main\n"
        f"sys.exit(main([{str(archive)!r}, '--csv', {str(tmp_path / 'out.csv')!r}, '--ray']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert lines == [lines[0]] and "pip install 'convnet-studio[cluster]'" in lines[0], proc.stderr
    assert not (tmp_path / "out.csv").exists()


def test_app_and_local_command_do_not_load_ray() -> None:
    code = "import sys, desktop.classify_cli, desktop.core.ray_classify; print('ray' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


@pytest.mark.parametrize("text", ["photos", "ray://", "host:port", "ray://head"])
def test_an_argument_that_is_not_an_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected auto"):
        ray_classify.check_address(text)


@pytest.mark.parametrize("text", ["auto", "local", "127.0.0.1:6379", "ray://head.example:10001"])
def test_addresses_are_accepted(text: str) -> None:
    assert ray_classify.check_address(text) == text
