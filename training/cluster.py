"""Who trains with whom: the cluster a run belongs to and the tf.distribute strategy for it.

`--cluster HOST:PORT,HOST:PORT --task-index I`, or a TF_CONFIG in the environment (as
Kubernetes operators and cluster schedulers set it), makes a run one worker of a
`MultiWorkerMirroredStrategy` job; without either, several local GPUs (or a CPU split
into logical devices, as the tests do) train with `MirroredStrategy`, one device with
none. Kept apart from training.distributed (the entry that starts, resumes and rejoins
a run) so that the trainer can use these pieces without importing its own caller.

Input sharding: our pipeline starts from a list of image paths held in memory
(`Dataset.from_tensor_slices`), not from files tf.data can split, so AutoShardPolicy.FILE
has nothing to shard. DATA sharding is used: every worker builds the same seeded pipeline
and keeps its own slice of each global batch, so the cluster sees exactly the batches a
single process with the same global batch sees (what the tests compare). The price: each
worker decodes (once, then caches) and augments every image, then drops the others' share.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass

# How long a worker waits for the whole cluster (at the start, and after losing a peer)
# before it gives up: --cluster-timeout.
DEFAULT_CLUSTER_TIMEOUT = 600.0


_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>\d{1,5})$")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_cluster(text: str) -> list[str]:
    """'host:port,host:port' -> the worker addresses; ValueError with one line naming the bad part."""
    workers = [part.strip() for part in str(text).split(",") if part.strip()]
    if not workers:
        raise ValueError("--cluster needs at least one HOST:PORT")
    for address in workers:
        match = _HOST_PORT.match(address)
        if not match or not 0 < int(match["port"]) < 65536:
            raise ValueError(f"--cluster: {address!r} is not HOST:PORT (a port from 1 to 65535)")
    if len(set(workers)) != len(workers):
        raise ValueError("--cluster names the same HOST:PORT twice")
    return workers


@dataclass(frozen=True)
class ClusterRole:
    """This process's place in the job: the TF_CONFIG it runs under and whether it is the chief."""

    tf_config: dict
    is_chief: bool
    task_type: str
    task_index: int

    @property
    def workers(self) -> int:
        return sum(len(tasks) for job, tasks in self.tf_config["cluster"].items() if job in ("chief", "worker"))

    def key(self) -> str:
        """Names this task in its cluster (the worker's temporary folder is derived from it)."""
        return json.dumps([self.tf_config["cluster"], self.task_type, self.task_index], sort_keys=True)


def role_from_flags(cluster: str | None, task_index: int | None) -> ClusterRole | None:
    if cluster is None and task_index is None:
        return None
    if cluster is None or task_index is None:
        raise ValueError("--cluster and --task-index go together")
    workers = parse_cluster(cluster)
    if not 0 <= task_index < len(workers):
        raise ValueError(f"--task-index must be from 0 to {len(workers) - 1} for {len(workers)} workers")
    tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": task_index}}
    return ClusterRole(tf_config, task_index == 0, "worker", task_index)


def role_from_tf_config(text: str | None) -> ClusterRole | None:
    """The role a TF_CONFIG gives (None when it is unset, empty or names no cluster)."""
    if not text or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError("TF_CONFIG is not valid JSON") from None
    cluster, task = (value.get("cluster"), value.get("task")) if isinstance(value, dict) else (None, None)
    if not cluster:
        return None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError('TF_CONFIG needs "cluster" and "task" mappings')
    for job, tasks in cluster.items():
        if not isinstance(tasks, list):
            raise ValueError(f'TF_CONFIG: cluster job "{job}" must be a list of HOST:PORT')
        parse_cluster(",".join(str(t) for t in tasks))
    unsupported = set(cluster) - {"chief", "worker"}
    if unsupported:
        raise ValueError(f"TF_CONFIG: only chief and worker jobs are supported, not {', '.join(sorted(unsupported))}")
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[task_type]):
        raise ValueError(f"TF_CONFIG: task {task_type!r} {index!r} is not in the cluster")
    is_chief = task_type == "chief" or ("chief" not in cluster and index == 0)
    return ClusterRole(value, is_chief, task_type, index)


def cluster_role(cluster: str | None, task_index: int | None) -> ClusterRole | None:
    """The flags win over TF_CONFIG; they are written to TF_CONFIG, which the strategy reads."""
    role = role_from_flags(cluster, task_index)
    if role is not None:
        os.environ["TF_CONFIG"] = json.dumps(role.tf_config)
        return role
    return role_from_tf_config(os.environ.get("TF_CONFIG"))


def local_strategy(enabled: bool):
    """MirroredStrategy over several local GPUs, or over a CPU split into logical devices
    (tf.config.set_logical_device_configuration, which only a caller does on purpose);
    otherwise the default strategy (one device)."""
    import tensorflow as tf

    if not enabled:
        return tf.distribute.get_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        _log(f"training on {len(gpus)} GPUs with MirroredStrategy")
        return tf.distribute.MirroredStrategy()
    if not gpus:
        cpus = tf.config.list_logical_devices("CPU")
        if len(cpus) > 1:
            _log(f"training on {len(cpus)} logical CPU devices with MirroredStrategy")
            return tf.distribute.MirroredStrategy([device.name for device in cpus])
    return tf.distribute.get_strategy()


def _multi_worker_strategy_class(tf):
    """MultiWorkerMirroredStrategy whose reduce() accepts what Keras 3's fit hands it (Keras
    3.15, TensorFlow 2.21): the first (x, y[, weight]) batch as one tuple, to build the model
    from (the strategy reduces one value at a time), and each scalar metric with axis=0 (a
    scalar has no axis 0: its mean across replicas is the reduction with axis=None)."""

    class NestedReduceMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis=None):
            parent = super()

            def one(item):
                rank = item.values[0].shape.rank if hasattr(item, "values") else tf.convert_to_tensor(item).shape.rank
                return parent.reduce(reduce_op, item, None if rank == 0 else axis)

            return tf.nest.map_structure(one, value)

    return NestedReduceMultiWorkerStrategy


class TrainingPlan:
    """The strategy a run trains under and what follows from it: the global batch, the
    learning rate, how the input is sharded, and whether this process writes the run."""

    def __init__(self, strategy, role: ClusterRole | None = None, scale_learning_rate: bool = True):
        self.strategy, self.role, self.scale = strategy, role, scale_learning_rate

    @classmethod
    def local(cls, enabled: bool, scale_learning_rate: bool = True) -> TrainingPlan:
        return cls(local_strategy(enabled), None, scale_learning_rate)

    @classmethod
    def multi_worker(
        cls,
        role: ClusterRole,
        scale_learning_rate: bool = True,
        timeout: float = DEFAULT_CLUSTER_TIMEOUT,
        events_fd: int | None = None,
    ) -> TrainingPlan:
        """Must come before TensorFlow runs any op: the collectives are set up at start-up.

        Building the strategy waits until every worker answers, at a job's start and when
        a worker that lost a peer starts again; at most `timeout` seconds (0: forever),
        then the process ends with a message (training.cluster_wait; `events_fd`: where
        the --progress jsonl events go, for its error event)."""
        import tensorflow as tf

        from training.cluster_wait import cluster_deadline

        _log(
            f"waiting for the {role.workers} workers of the cluster (at most {round(timeout)} s; --cluster-timeout)"
            if timeout
            else f"waiting for the {role.workers} workers of the cluster"
        )
        message = (
            f"not every worker of the cluster answered within {round(timeout)} s ({role.workers} expected; "
            f"this is {role.task_type} {role.task_index}): start the missing workers with the same command and "
            "their own --task-index, check the hosts, ports and firewall, or wait longer with --cluster-timeout"
        )
        with cluster_deadline(timeout, message, events_fd):
            strategy = _multi_worker_strategy_class(tf)()
        _log(
            f"worker {role.task_type} {role.task_index} of {role.workers} ({'chief' if role.is_chief else 'not chief'}): "
            f"{strategy.num_replicas_in_sync} replicas in all"
        )
        return cls(strategy, role, scale_learning_rate)

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self) -> bool:
        return self.role is None or self.role.is_chief

    def global_batch(self, per_replica: int) -> int:
        return per_replica * self.replicas

    def learning_rate(self, base: float) -> float:
        """Linear scaling (Goyal et al. 2017): the global batch grew by the replica count."""
        return base * self.replicas if self.scale else base

    def shard(self, dataset):
        """The cluster's input policy (module docstring); a local strategy splits batches itself."""
        if self.role is None:
            return dataset
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)
