"""Training under tf.distribute: several devices in one process, several worker processes.

Every run is a `convnet-train train` child process (a MultiWorkerMirroredStrategy, like
logical devices, must be set up before TensorFlow runs anything, so it cannot share this
test process), bounded by a timeout and killed with its process group in teardown.

The reference is one device driven through tf.distribute (MirroredStrategy over /cpu:0):
Keras 3's fit under any strategy opens one extra iterator over the training data before
the first epoch, which advances the seeded reshuffle, so a run under the default strategy
sees other (equally random) permutations and is no reference for rounding-level checks.
Measured here (lenet5, 480 training digits, 2 epochs, global batch 32): 1 device vs 2
logical devices vs 2 worker processes agree within 2.4e-7 in every loss and accuracy of
history.csv; the tolerance is 1e-4 (absolute).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.cluster import TrainingPlan, cluster_role, parse_cluster, role_from_flags, role_from_tf_config

TOLERANCE = 1e-4
PER_REPLICA_BATCH = 16
RUN_TIMEOUT = 240
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
ENV.pop("TF_CONFIG", None)

# A child that splits the CPU into DEVICES logical devices (0: MirroredStrategy over /cpu:0
# alone, the one-device reference) before running convnet-train's main.
_DEVICES_SCRIPT = """
import sys
import tensorflow as tf
devices = int(sys.argv[1])
if devices > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
else:
    import training.cluster
    training.cluster.local_strategy = lambda enabled: tf.distribute.MirroredStrategy(["/cpu:0"])
from training import cli
sys.exit(cli.main(sys.argv[2:]))
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def train_args(data: Path, out: Path, epochs: int, batch: int) -> list[str]:
    return [
        "train",
        str(data),
        "--backbone",
        "lenet5",
        "--weights",
        "none",
        "--epochs",
        str(epochs),
        "--batch-size",
        str(batch),
        "--augment",
        "none",
        "--seed",
        "3",
        "--deterministic",
        "--no-tensorboard",
        "--reduce-lr-patience",
        "0",
        "--early-stopping-patience",
        "0",
        "--out",
        str(out),
    ]


class Children:
    """Child processes, each in its own process group, all killed in teardown."""

    def __init__(self, logs: Path):
        self.logs, self.running = logs, []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # closed in kill_all
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
        child.log = log
        self.running.append(child)
        return child

    def wait(self, child: subprocess.Popen, timeout: float = RUN_TIMEOUT) -> int:
        return child.wait(timeout=timeout)

    def text(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def kill_all(self) -> None:
        for child in self.running:
            if child.poll() is None:
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.wait(timeout=30)
            child.log.close()


@pytest.fixture
def children(tmp_path):
    group = Children(tmp_path)
    try:
        yield group
    finally:
        group.kill_all()


@pytest.fixture(scope="module")
def digits(digits_dir) -> Path:
    return digits_dir


def on_devices(devices: int, args: list[str]) -> list[str]:
    return [sys.executable, "-c", _DEVICES_SCRIPT, str(devices), *args]


def worker_command(args: list[str], ports: list[int], index: int) -> list[str]:
    cluster = ",".join(f"127.0.0.1:{port}" for port in ports)
    return [sys.executable, "-m", "training.cli", *args, "--cluster", cluster, "--task-index", str(index)]


def history(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "history.csv", newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def assert_same_history(got: list[dict], expected: list[dict]) -> None:
    assert [row["epoch"] for row in got] == [row["epoch"] for row in expected]
    for mine, theirs in zip(got, expected):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
            assert mine[key] == pytest.approx(theirs[key], abs=TOLERANCE), (key, mine, theirs)


@pytest.fixture(scope="module")
def reference(digits, tmp_path_factory) -> Path:
    """One device, global batch 2 x PER_REPLICA_BATCH, the learning rate two replicas get."""
    out = tmp_path_factory.mktemp("reference") / "run"
    args = [*train_args(digits, out, 2, 2 * PER_REPLICA_BATCH), "--learning-rate", "2e-3"]
    done = subprocess.run(on_devices(1, args), capture_output=True, text=True, env=ENV, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_two_logical_devices_match_one_device_with_the_same_global_batch(digits, reference, tmp_path, children):
    out = tmp_path / "mirrored"
    child = children.start("mirrored", on_devices(2, train_args(digits, out, 2, PER_REPLICA_BATCH)))
    assert children.wait(child) == 0, children.text("mirrored")[-3000:]
    assert "2 logical CPU devices with MirroredStrategy" in children.text("mirrored")
    assert_same_history(history(out), history(reference))
    assert history(out)[0]["learning_rate"] == pytest.approx(2e-3)  # 1e-3 scaled by 2 replicas


@pytest.mark.slow
def test_two_workers_write_one_exportable_run_that_matches_one_process(digits, reference, tmp_path, children):
    out = tmp_path / "cluster-run"
    ports = free_ports(2)
    args = [*train_args(digits, out, 2, PER_REPLICA_BATCH), "--progress", "jsonl"]
    workers = [children.start(f"worker{i}", worker_command(args, ports, i)) for i in (1, 0)]
    for index, worker in zip((1, 0), workers):
        assert children.wait(worker) == 0, children.text(f"worker{index}")[-3000:]
    assert_same_history(history(out), history(reference))
    for name in ("config.yaml", "split.json", "best.keras", "result.json", "history.csv"):
        assert (out / name).is_file(), name
    assert json.loads((out / "checkpoints" / "state.json").read_text())["finished"] is True
    # The other worker wrote nothing that stays, and no progress events: they come from the chief.
    worker_text = children.text("worker1")
    assert "removed its own files" in worker_text
    folder = Path(worker_text.split("this worker's own files: ")[1].split(" (deleted")[0])
    assert not folder.exists()
    assert '"event"' not in worker_text
    assert '"event": "done"' in children.text("worker0")
    model = tmp_path / "cluster.onnx"
    exported = subprocess.run(
        [sys.executable, "-m", "training.cli", "export", str(out), "--out", str(model)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=RUN_TIMEOUT,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert model.stat().st_size > 10_000


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.slow
def test_a_killed_worker_started_again_rejoins_and_the_job_finishes(digits, tmp_path, children):
    epochs = 4
    out = tmp_path / "killed-run"
    ports = free_ports(2)
    args = train_args(digits, out, epochs, PER_REPLICA_BATCH)
    chief = children.start("chief", worker_command(args, ports, 0))
    worker = children.start("worker", worker_command(args, ports, 1))

    def worker_saved_an_epoch() -> bool:
        text = children.text("worker")
        if "this worker's own files: " not in text:
            return False
        state = Path(text.split("this worker's own files: ")[1].split(" (deleted")[0]) / "checkpoints" / "state.json"
        assert worker.poll() is None, text[-3000:]  # it must still be running to be killed
        return state.is_file() and json.loads(state.read_text()).get("next_epoch", 0) >= 1

    _wait_for(worker_saved_an_epoch, RUN_TIMEOUT, "the worker's first epoch")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert chief.poll() is None or chief.returncode == 0
    again = children.start("worker-again", worker_command(args, ports, 1))
    assert children.wait(again) == 0, children.text("worker-again")[-3000:]
    assert children.wait(chief) == 0, children.text("chief")[-3000:]
    rows = history(out)
    assert [int(row["epoch"]) for row in rows] == list(range(1, epochs + 1))
    assert json.loads((out / "checkpoints" / "state.json").read_text())["finished"] is True
    assert "continuing the unfinished run" in children.text("worker-again")


def _group_is_gone(child: subprocess.Popen) -> bool:
    try:
        os.killpg(child.pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_a_worker_whose_peers_never_come_ends_after_the_cluster_timeout(digits, tmp_path, children):
    """TensorFlow waits for the cluster forever, holding the interpreter: the watchdog ends
    the wait with a message and the progress event, and leaves no process behind."""
    out = tmp_path / "lonely"
    args = [*train_args(digits, out, 1, PER_REPLICA_BATCH), "--progress", "jsonl", "--cluster-timeout", "3"]
    chief = children.start("lonely", worker_command(args, free_ports(2), 0))
    assert children.wait(chief, timeout=120) == -signal.SIGINT, children.text("lonely")[-3000:]
    text = children.text("lonely")
    assert "convnet-train: error: not every worker of the cluster answered within 3 s (2 expected" in text
    events = [json.loads(line) for line in text.splitlines() if line.startswith('{"event"')]
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "cluster"
    assert not out.exists()  # nothing was written while waiting
    _wait_for(lambda: _group_is_gone(chief), 30, "the watchdog to exit")


@pytest.mark.slow
def test_ctrl_c_ends_a_worker_waiting_for_its_cluster(digits, tmp_path, children):
    """Without a deadline (--cluster-timeout 0) the wait is TensorFlow's own, and Ctrl+C
    must still end it (Python's handler cannot run there: SIGINT is at its default)."""
    args = [*train_args(digits, tmp_path / "waiting", 1, PER_REPLICA_BATCH), "--cluster-timeout", "0"]
    chief = children.start("waiting", worker_command(args, free_ports(2), 0))
    _wait_for(lambda: "waiting for the 2 workers" in children.text("waiting"), RUN_TIMEOUT, "the wait")
    time.sleep(3)  # well inside TensorFlow's wait by now
    assert chief.poll() is None, children.text("waiting")[-3000:]
    chief.send_signal(signal.SIGINT)
    assert children.wait(chief, timeout=30) == -signal.SIGINT


# The cluster's description: fast, no TensorFlow -------------------------------------------


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "at least one"),
        ("10.0.0.1", "not HOST:PORT"),
        ("10.0.0.1:0", "not HOST:PORT"),
        ("10.0.0.1:70000", "not HOST:PORT"),
        ("a:1,a:1", "twice"),
        ("host name:12", "not HOST:PORT"),
    ],
)
def test_a_bad_cluster_is_one_line_naming_the_problem(text, problem):
    with pytest.raises(ValueError, match=problem) as refused:
        parse_cluster(text)
    assert "\n" not in str(refused.value)


def test_flags_give_the_role_and_task_zero_is_the_chief():
    assert parse_cluster(" a:1, [::1]:2 ") == ["a:1", "[::1]:2"]
    chief, other = role_from_flags("a:1,b:2", 0), role_from_flags("a:1,b:2", 1)
    assert (chief.is_chief, other.is_chief, other.workers) == (True, False, 2)
    assert chief.key() != other.key()
    for cluster, index, problem in (("a:1,b:2", 2, "from 0 to 1"), ("a:1", None, "go together")):
        with pytest.raises(ValueError, match=problem):
            role_from_flags(cluster, index)
    assert role_from_flags(None, None) is None


def test_tf_config_roles(monkeypatch):
    workers = {"worker": ["a:1", "b:2"]}
    assert role_from_tf_config(json.dumps({"cluster": workers, "task": {"type": "worker", "index": 0}})).is_chief
    with_chief = {"cluster": {"chief": ["c:3"], **workers}, "task": {"type": "worker", "index": 0}}
    assert not role_from_tf_config(json.dumps(with_chief)).is_chief
    assert role_from_tf_config(json.dumps({**with_chief, "task": {"type": "chief", "index": 0}})).workers == 3
    assert role_from_tf_config("") is None and role_from_tf_config('{"task": {}}') is None
    for text, problem in (
        ("{", "not valid JSON"),
        (json.dumps({"cluster": {"ps": ["p:1"], **workers}, "task": {"type": "worker"}}), "only chief and worker"),
        (json.dumps({"cluster": workers, "task": {"type": "worker", "index": 5}}), "not in the cluster"),
    ):
        with pytest.raises(ValueError, match=problem):
            role_from_tf_config(text)
    # Flags win, and are what TF_CONFIG then says (the strategy reads TF_CONFIG).
    monkeypatch.setenv("TF_CONFIG", json.dumps(with_chief))
    role = cluster_role("x:1,y:2", 1)
    assert role.task_index == 1 and json.loads(os.environ["TF_CONFIG"])["cluster"] == {"worker": ["x:1", "y:2"]}


class _Replicas:
    def __init__(self, count: int):
        self.num_replicas_in_sync = count


def test_global_batch_and_linear_learning_rate_scaling():
    plan = TrainingPlan(_Replicas(4))
    assert (plan.global_batch(16), plan.learning_rate(1e-3)) == (64, pytest.approx(4e-3))
    assert TrainingPlan(_Replicas(4), scale_learning_rate=False).learning_rate(1e-3) == 1e-3
    assert TrainingPlan(_Replicas(1)).learning_rate(1e-3) == 1e-3


def test_a_bad_cluster_flag_is_exit_2_with_one_line(tmp_path, digits):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.cli",
            *train_args(digits, tmp_path / "run", 1, 8),
            "--cluster",
            "nowhere",
            "--task-index",
            "0",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip().splitlines()[-1].startswith("convnet-train: error: --cluster: 'nowhere' is not HOST:PORT")
    )
    assert not (tmp_path / "run").exists()
