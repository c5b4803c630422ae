"""Training across processes (`--distribution=multi_process`): one process per host (or per GPU),
all training one model on one global batch.

- JAX: `jax.distributed.initialize` (CPU collectives over gloo, JAX's default) and
  `keras.distribution.DataParallel` over every process's devices. Arrays are global: each
  process hands its rows of the global batch to `train_on_batch`, and Keras assembles them
  (`jax.make_array_from_process_local_data`) into the same global batch one process would see.
- TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG` (written from the
  flags when it is not set), one replica (device) per process; each process runs the step on
  its rows and gradients are all-reduced.

Where a process learns its place, flags first, then the environment:

    --coordinator_address  $AVLAE_COORDINATOR_ADDRESS, $KERAS_DISTRIBUTION_JOB_ADDRESSES,
                           $JAX_COORDINATOR_ADDRESS
    --num_processes        $AVLAE_NUM_PROCESSES, $KERAS_DISTRIBUTION_NUM_PROCESSES, $SLURM_NTASKS
    --process_id           $AVLAE_PROCESS_ID, $KERAS_DISTRIBUTION_PROCESS_ID, $SLURM_PROCID

The coordinator is `host:port` of process 0 or, as Keras's job addresses, every process's
`host:port` comma-separated with process 0 first; TensorFlow needs the full list (or its own
`TF_CONFIG`). On JAX, what is still unknown is left to JAX's cluster detection (SLURM, Open MPI,
Cloud TPU).

Every process computes; only process 0 (`is_chief()`) writes files.

What each backend does (joining, collectives, the data layout) is in `avlae_keras.backend`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import zlib
from collections.abc import Mapping

from avlae_keras import backend

COORDINATOR_ENV = (
    "AVLAE_COORDINATOR_ADDRESS",
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "JAX_COORDINATOR_ADDRESS",
)
NUM_PROCESSES_ENV = ("AVLAE_NUM_PROCESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "SLURM_NTASKS")
PROCESS_ID_ENV = ("AVLAE_PROCESS_ID", "KERAS_DISTRIBUTION_PROCESS_ID", "SLURM_PROCID")


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """Where this process belongs, as far as flags and environment say (None: not said)."""

    addresses: tuple[str, ...] = ()  # process 0's host:port first
    num_processes: int | None = None
    process_id: int | None = None

    @property
    def coordinator_address(self) -> str | None:
        return self.addresses[0] if self.addresses else None


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def _integer(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an integer") from None


def cluster_settings(config, environ: Mapping[str, str] | None = None) -> ClusterSettings:
    """The coordinator, process count and process id of `config` (a `TrainConfig`): its flags,
    else the environment variables above, else `TF_CONFIG` (TensorFlow's)."""
    environ = os.environ if environ is None else environ
    address = config.coordinator_address or _first(environ, COORDINATOR_ENV)
    count = config.num_processes
    if count is None:
        count = _integer(_first(environ, NUM_PROCESSES_ENV), "number of processes")
    index = config.process_id
    if index is None:
        index = _integer(_first(environ, PROCESS_ID_ENV), "process id")
    addresses = tuple(a.strip() for a in address.split(",") if a.strip()) if address else ()
    tf_config = environ.get("TF_CONFIG")
    if tf_config and not addresses:
        workers, task_index = _tf_config_workers(tf_config)
        addresses = tuple(workers)
        count = len(workers) if count is None else count
        index = task_index if index is None else index
    if len(addresses) > 1 and count is not None and count != len(addresses):
        raise ValueError(
            f"--coordinator_address lists {len(addresses)} processes but --num_processes is "
            f"{count}; list every process or give process 0's host:port only"
        )
    if count is None and len(addresses) > 1:
        count = len(addresses)
    return ClusterSettings(addresses, count, index)


def _tf_config_workers(tf_config: str) -> tuple[list[str], int | None]:
    parsed = json.loads(tf_config)
    cluster = parsed.get("cluster", {})
    workers = [*cluster.get("chief", []), *cluster.get("worker", [])]
    task = parsed.get("task", {})
    index = task.get("index")
    if index is not None and task.get("type") == "worker" and cluster.get("chief"):
        index += len(cluster["chief"])
    return workers, index


# === This process's place, once initialized ====================================================


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The initialized cluster as this process sees it."""

    process_index: int = 0
    process_count: int = 1
    num_replicas: int = 1  # devices the global batch is split over

    @property
    def is_chief(self) -> bool:
        return self.process_index == 0


_current = Cluster()


def current() -> Cluster:
    """This process's place (one process of one until `multi_process_scope` starts)."""
    return _current


def is_chief() -> bool:
    """True in the process that writes checkpoints, samples, logs and config.json."""
    return _current.is_chief


def process_index() -> int:
    return _current.process_index


def process_count() -> int:
    return _current.process_count


def shard_rows(batch_size: int, index: int, count: int) -> range:
    """Rows of a global batch of `batch_size` that process `index` of `count` feeds: an equal,
    contiguous block, process 0's first."""
    if batch_size % count:
        raise ValueError(
            f"--batch_size: {batch_size} does not split over {count} processes; "
            f"use a multiple of {count}"
        )
    rows = batch_size // count
    return range(index * rows, (index + 1) * rows)


@contextlib.contextmanager
def multi_process_scope(config):
    """Joins the cluster `config` describes and yields its `Cluster`; models built and trained
    inside are data parallel over every process's devices. Call it before anything runs on
    the backend (TensorFlow's strategy must be made at program start)."""
    global _current
    settings = cluster_settings(config)
    previous = _current
    joined = backend.join_cluster(settings.addresses, settings.num_processes, settings.process_id)
    with joined as (index, count, num_replicas):
        _current = cluster = Cluster(index, count, num_replicas)
        try:
            yield cluster
        finally:
            _current = previous


def prepare_model(model) -> None:
    """Adapts a built or loaded model to the cluster (see `backend.prepare_model_for_workers`)."""
    if _current.process_count > 1:
        backend.prepare_model_for_workers(model)


def local_rows(batch_size: int) -> range:
    """The rows of every global batch of `batch_size` that this process feeds.

    On JAX they are the rows the data layout puts on this process's devices (checked to be one
    contiguous block); on TensorFlow, block `process_index` of `process_count`.
    """
    cluster = _current
    if cluster.process_count == 1:
        return range(batch_size)
    rows = shard_rows(batch_size, cluster.process_index, cluster.process_count)
    if backend.BACKEND != "jax":
        return rows
    if batch_size % cluster.num_replicas:
        raise ValueError(
            f"--batch_size: {batch_size} does not split over {cluster.num_replicas} devices; "
            f"use a multiple of {cluster.num_replicas}"
        )
    held = backend.rows_on_local_devices(batch_size)
    block = range(min(held), max(held) + 1)
    if held != set(block) or len(block) != len(rows):
        raise ValueError(
            f"this process's devices hold rows {sorted(held)} of each batch, not one block of "
            f"{len(rows)}; give every process the same number of devices"
        )
    return block


def _gather(value: int) -> list[int]:
    return backend.gather_from_processes(value)


def check_same(value: int, what: str) -> None:
    """Fails in every process unless all processes have the same integer `value` (e.g. the
    step they resume from: the work directory must be one shared folder)."""
    if _current.process_count == 1:
        return
    values = _gather(value)
    if len(set(values)) != 1:
        raise RuntimeError(
            f"the processes disagree on {what}: {values} (by process); "
            "every process must see the same --workdir (a shared folder)"
        )


def barrier(name: str) -> None:
    """Returns once every process has called `barrier(name)` (e.g. once process 0 has written a
    checkpoint, so that no process exits while it writes)."""
    if _current.process_count > 1:
        check_same(zlib.crc32(name.encode()) & 0x7FFFFFFF, f"the barrier ({name})")


def save_model_elsewhere(model) -> None:
    """What a process other than 0 does while process 0 saves: the same `model.save`, into a
    temporary folder it then deletes. Saving takes part in collectives (on JAX, `jax.device_put`
    of the throwaway optimizer Keras builds to list saveable attributes checks that every
    process passes the same value; on TensorFlow, creating a variable under the strategy
    broadcasts it), so every process must save."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="avlae-save-")
    try:
        model.save(os.path.join(folder, "model.keras"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
