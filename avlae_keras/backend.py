"""The only backend-specific code of AVLAE: how gradients are taken, how the training step is
plugged into Keras's trainer, how the batch is split over devices, and how endpoints are
exported to a TensorFlow SavedModel.

`loss_and_gradients(loss_fn, variables)`, `input_gradients(fn, inputs)` and
`train_on_batch(model, videos)` and `train_on_batches(model, step_batches)` have the same meaning
on every backend; `TrainStep` adapts `AVLAE.train_iteration(videos) -> logs` (plain imperative
code: read variables, compute, `optimizer.apply`) to the trainer's calling convention, and runs
several iterations in one compiled call when handed `{STEP_BATCHES: (K, B, T, H, W, 3)}`:

- TensorFlow: `tf.GradientTape`; the step runs inside Keras's `tf.function` (XLA when
  `jit_compile`). Under `tf.distribute`, each replica's loss is divided by the number of
  replicas, since the optimizer sums gradients across replicas.
- JAX: the trainer jits `train_step(state, data)` with the state as explicit arrays. The whole
  iteration runs inside one `keras.StatelessScope` holding every model, optimizer and metric
  variable; `loss_and_gradients` differentiates a stateless re-run of `loss_fn` with the chosen
  variables replaced by `jax.value_and_grad`'s arguments, and the optimizers' `apply` write
  their updates into the scope, from which the new state is read back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from avlae_keras import keras_internals
from flows.transforms import compile_model_function, is_traced

BACKEND = keras.backend.backend()
if BACKEND not in ("tensorflow", "jax"):
    raise ImportError(
        f"AVLAE training supports the TensorFlow and JAX backends, not {BACKEND!r}. "
        "Set KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax."
    )


def apply_gradients(optimizer, gradients: Sequence, variables: Sequence) -> None:
    """One optimizer update of `variables` (inside the JAX training scope, a stateless one)."""
    optimizer.apply(list(gradients), list(variables))


# The key of a training input that holds K consecutive steps' batches, (K, B, T, H, W, 3), for K
# iterations of Algorithm 1 in one compiled call (`train_on_batches`); a key, not a rank, so that
# a malformed video batch still fails the model's input check instead of being read as steps.
STEP_BATCHES = "step_batches"


def _iteration_with_own_logs(model, videos) -> dict:
    """One of several iterations in a call: its logs are its own values, as a call of
    `train_on_batch` per step gives them, not running means over the call."""
    model.reset_metrics()
    return model.train_iteration(videos)


def _logs_per_step(logs: dict, steps: int) -> list[dict[str, float]]:
    values = {name: np.asarray(value).reshape(steps) for name, value in logs.items()}
    return [{name: float(v[i]) for name, v in values.items()} for i in range(steps)]


def train_on_batches(model, step_batches) -> list[dict[str, float]]:
    """Trains on K consecutive batches (K, B, T, H, W, 3) in one compiled call (a loop over the
    K iterations inside the program: one launch and no host round trip per step); returns each
    step's logs, as K calls of `train_on_batch` would. A different K compiles another program.
    On a CPU, XLA runs such a loop slower per step than one step per call (benchmarks/RESULTS.md,
    `--steps_per_execution`). One process, one device: the trainer refuses it otherwise."""
    steps = len(step_batches)
    if steps == 1:
        return _logs_per_step(train_on_batch(model, step_batches[0]), 1)
    logs = model.train_on_batch({STEP_BATCHES: step_batches}, return_dict=True)
    return _logs_per_step(logs, steps)


def draw_per_replica(draw: Callable, batch_size):
    """`draw(n)` samples n random rows; returns this replica's `batch_size` rows of one draw
    for the whole global batch, so that replicas get different samples and the global batch
    is the same however it is split."""
    num_replicas, replica_id = _replica_position()
    if num_replicas == 1:
        return draw(batch_size)
    rows = draw(batch_size * num_replicas)
    return rows[replica_id * batch_size : (replica_id + 1) * batch_size]


if BACKEND == "tensorflow":
    import tensorflow as tf

    def _num_replicas() -> int:
        context = tf.distribute.get_replica_context()
        return context.num_replicas_in_sync if context is not None else 1

    def loss_and_gradients(loss_fn: Callable, variables: Sequence):
        """Runs `loss_fn() -> (loss, aux)`; returns `(loss, aux, gradients wrt variables)`."""
        variables = list(variables)
        with tf.GradientTape() as tape:
            loss, aux = loss_fn()
            scaled_loss = loss / _num_replicas()
        gradients = tape.gradient(scaled_loss, variables)
        gradients = [
            tf.zeros_like(v.value) if g is None else g
            for g, v in zip(gradients, variables, strict=True)
        ]
        return loss, aux, gradients

    def input_gradients(fn: Callable, inputs):
        """Gradient of `sum(fn(inputs))` wrt `inputs`, itself differentiable (for R1)."""
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            # The sum must be taken on the tape: outside it the gradient is None.
            total = tf.reduce_sum(tf.cast(fn(inputs), tf.float32))
        return tape.gradient(total, inputs)

    def _replica_position():
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return 1, 0
        return context.num_replicas_in_sync, context.replica_id_in_sync_group

    def default_jit_compile() -> bool:
        """XLA, except under a multi-replica `tf.distribute` strategy: XLA cannot compile a
        step that touches variables mirrored on other devices."""
        return not (tf.distribute.has_strategy() and _num_replicas_in_strategy() > 1)

    def _num_replicas_in_strategy() -> int:
        return tf.distribute.get_strategy().num_replicas_in_sync

    class TrainStep:
        """Mixin giving `keras.Model` a `train_step` that runs `self.train_iteration`."""

        def train_step(self, data):
            videos, _, _ = keras.utils.unpack_x_y_sample_weight(data)
            if isinstance(videos, dict) and STEP_BATCHES in videos:
                return self._train_iterations(videos[STEP_BATCHES])
            return self.train_iteration(videos)

        def _train_iterations(self, step_batches) -> dict:
            # A while loop in the step's program, every iteration's logs stacked: (K,) each.
            initial = {metric.name: tf.zeros((), "float32") for metric in self.metrics}
            return tf.scan(
                lambda _, videos: _iteration_with_own_logs(self, videos),
                step_batches,
                initializer=initial,
            )

    def train_on_batch(model, videos) -> dict[str, float]:
        """One training step on `videos` (this process's rows of the global batch); the logs.

        With several replicas in this process (`MirroredStrategy`), each replica gets its
        share of the rows, as `fit` gives them; Keras's `train_on_batch` hands every replica
        the whole batch (each replica then trains on all rows: N times the work, and the global
        batch is N copies)."""
        strategy = model.distribute_strategy
        # (The default strategy has one replica and no `worker_devices`.)
        local_replicas = (
            1 if strategy.num_replicas_in_sync == 1 else len(strategy.extended.worker_devices)
        )
        if local_replicas == 1:
            return model.train_on_batch(videos, return_dict=True)
        rows = len(videos)
        if rows % local_replicas:
            raise ValueError(
                f"a batch of {rows} videos does not split over {local_replicas} devices; "
                f"use a batch size that is a multiple of {local_replicas}"
            )
        share = rows // local_replicas

        def replica_rows(context):
            start = (context.replica_id_in_sync_group % local_replicas) * share
            return videos[start : start + share]

        per_replica = strategy.experimental_distribute_values_from_function(replica_rows)
        # What `train_on_batch` does before its step, from one replica's batch.
        keras_internals.symbolic_build(model, (videos[:share], None, None))
        model.make_train_function()
        model.reset_metrics()
        logs = model.train_function(iter([(per_replica, None, None)]))
        return {name: float(value) for name, value in logs.items()}

else:
    import jax
    import jax.numpy as jnp

    # Initial weights drawn by far fewer compiled programs, with the same values (the per-shape
    # random programs were most of the 28 s of building the tests' tiny AVLAE).
    keras_internals.draw_initial_values_in_few_programs()

    def _current_mapping() -> dict:
        scope = keras_internals.current_stateless_scope()
        return dict(scope.state_mapping) if scope is not None else {}

    def _current_value(variable, mapping: dict):
        value = mapping.get(id(variable))
        return variable.value if value is None else value

    def loss_and_gradients(loss_fn: Callable, variables: Sequence):
        """Runs `loss_fn() -> (loss, aux)`; returns `(loss, aux, gradients wrt variables)`.

        Other variables that `loss_fn` writes (e.g. random seed states) get their new values.
        """
        variables = list(variables)
        mapping = _current_mapping()
        initial_values = [_current_value(v, mapping) for v in variables]
        differentiated = {id(v) for v in variables}
        written: dict = {}

        def stateless_loss(values):
            inner_mapping = dict(mapping)
            inner_mapping.update((id(v), x) for v, x in zip(variables, values, strict=True))
            with keras_internals.RecordingStatelessScope(inner_mapping) as scope:
                loss, aux = loss_fn()
            written.update(
                (key, v) for key, v in scope.updated.items() if key not in differentiated
            )
            updates = {key: scope.state_mapping[key] for key in written}
            return loss, (aux, updates)

        (loss, (aux, updates)), gradients = jax.value_and_grad(stateless_loss, has_aux=True)(
            initial_values
        )
        for key, value in updates.items():
            written[key].assign(value)
        return loss, aux, gradients

    def input_gradients(fn: Callable, inputs):
        """Gradient of `sum(fn(inputs))` wrt `inputs`, itself differentiable (for R1)."""
        return jax.grad(lambda x: jnp.sum(fn(x).astype(jnp.float32)))(inputs)

    def _replica_position():
        # Arrays are global under `keras.distribution`: one draw serves every device.
        return 1, 0

    def default_jit_compile() -> bool:
        return True

    class TrainStep:
        """Mixin giving `keras.Model` a JAX `train_step(state, data)` that runs
        `self.train_iteration` statelessly over the whole trainer state."""

        def train_step(self, state, data):
            videos, _, _ = keras.utils.unpack_x_y_sample_weight(data)
            if isinstance(videos, dict) and STEP_BATCHES in videos:

                def iteration(state, videos):
                    logs, state = self._stateless_iteration(
                        state, lambda: _iteration_with_own_logs(self, videos)
                    )
                    return state, logs

                # One traced iteration looped K times; every iteration's logs stacked: (K,) each.
                state, logs = jax.lax.scan(iteration, state, videos[STEP_BATCHES])
                return logs, state
            return self._stateless_iteration(state, lambda: self.train_iteration(videos))

        def _stateless_iteration(self, state, iteration: Callable):
            """Runs `iteration() -> logs` over the trainer state; returns (logs, new state)."""
            groups = (
                self.trainable_variables,
                self.non_trainable_variables,
                self.optimizer.variables,
                self.metrics_variables,
            )
            mapping = [
                (variable, value)
                for variables, values in zip(groups, state, strict=True)
                for variable, value in zip(variables, values, strict=True)
            ]
            with keras.StatelessScope(state_mapping=mapping) as scope:
                logs = iteration()
            new_state = tuple(
                [
                    _updated_or(scope.get_current_value(variable), value)
                    for variable, value in zip(variables, values, strict=True)
                ]
                for variables, values in zip(groups, state, strict=True)
            )
            return logs, new_state

    def _updated_or(new_value, old_value):
        return old_value if new_value is None else new_value

    def train_on_batch(model, videos) -> dict[str, float]:
        """One training step on `videos` (this process's rows of the global batch); the logs.
        Under `keras.distribution` the trainer lays the batch out over the devices itself."""
        return model.train_on_batch(videos, return_dict=True)


def compile_for_calls(model, fn: Callable) -> Callable:
    """`fn(*arrays)` of `model`'s current weights, for calls on concrete arrays (`generate`,
    `encode`, `reconstruct`). JAX: compiled with XLA on first use per input shape, as Keras's
    `predict` is: op by op, JAX compiles every operation for each new shape anyway (the tests'
    tiny generator: 4.6 s op by op, 0.8 s as one program). TensorFlow: `fn` itself, eager; its
    kernels run without compiling, so a first call is cheaper than a trace."""
    return compile_model_function(model, fn) if BACKEND == "jax" else fn


def value_range(values) -> tuple[float, float] | None:
    """(min, max) of `values` when they are known now (a NumPy array or an eager tensor); None
    inside a traced function (`tf.function`, `jax.jit`) or for a symbolic `keras.KerasTensor`,
    and for an empty array."""
    if isinstance(values, np.ndarray | np.generic):
        return (float(values.min()), float(values.max())) if values.size else None
    if is_traced(values):
        return None
    if not np.prod(values.shape):
        return None
    low, high = keras.ops.min(values), keras.ops.max(values)
    return float(keras.ops.convert_to_numpy(low)), float(keras.ops.convert_to_numpy(high))


@contextlib.contextmanager
def data_parallel_scope():
    """Builds and trains models inside it with the batch split over every local accelerator
    (or every CPU device XLA exposes): `keras.distribution.DataParallel` on JAX,
    `tf.distribute.MirroredStrategy` on TensorFlow. Yields the number of replicas."""
    if BACKEND == "jax":
        devices = keras.distribution.list_devices()
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(previous)
    else:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            yield strategy.num_replicas_in_sync


def accelerator_present() -> bool:
    """Whether the Keras backend computes on a GPU or TPU."""
    if BACKEND == "jax":
        return jax.default_backend() != "cpu"
    devices = tf.config.list_physical_devices
    return bool(devices("GPU") or devices("TPU"))


# === Processes of a multi-process cluster ======================================================
# `avlae_keras.distributed` decides who is where (flags, environment) and keeps this process's
# place; these functions are what each backend does with it.


@contextlib.contextmanager
def join_cluster(addresses: Sequence[str], num_processes: int | None, process_id: int | None):
    """Joins the cluster and yields `(process_index, process_count, num_replicas)`; models built
    and trained inside are data parallel over every process's devices.

    - JAX: `jax.distributed.initialize` (CPU collectives over gloo) and
      `keras.distribution.DataParallel` over every process's devices; unknown values are left
      to JAX's cluster detection (SLURM, Open MPI, Cloud TPU).
    - TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG`, written from
      `addresses` (process 0 first) when it is not set; one device per process.
    """
    if BACKEND == "jax":
        if not jax.distributed.is_initialized():
            if jax.config.jax_cpu_collectives_implementation is None:
                # Cross-process collectives of CPU devices (JAX's default since 0.4.3x).
                jax.config.update("jax_cpu_collectives_implementation", "gloo")
            jax.distributed.initialize(
                coordinator_address=addresses[0] if addresses else None,
                num_processes=num_processes,
                process_id=process_id,
            )
        devices = keras.distribution.list_devices()
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield jax.process_index(), jax.process_count(), len(devices)
        finally:
            keras.distribution.set_distribution(previous)
        return
    if not os.environ.get("TF_CONFIG"):
        if len(addresses) < 2 or process_id is None:
            raise ValueError(
                "--distribution=multi_process on TensorFlow needs every process's host:port: "
                "set TF_CONFIG, or pass --coordinator_address=host0:port,host1:port,... "
                "(process 0 first) and --process_id"
            )
        os.environ["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": list(addresses)},
                "task": {"type": "worker", "index": process_id},
            }
        )
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    count = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
    index = int(resolver.task_id or 0)
    if strategy.num_replicas_in_sync != count:
        raise ValueError(
            f"TensorFlow sees {strategy.num_replicas_in_sync} devices over {count} processes; "
            "multi_process training on TensorFlow feeds one device per process: start one "
            "process per GPU (CUDA_VISIBLE_DEVICES)"
        )
    with strategy.scope():
        yield index, count, strategy.num_replicas_in_sync


def prepare_model_for_workers(model) -> None:
    """Adapts a built or loaded model to a multi-process cluster. TensorFlow: Keras 3.15 reduces
    the logs of a multi-worker step with `strategy.reduce("MEAN", log, axis=0)`, which fails on
    scalars ("Invalid reduction dimension 0 for input with 0 dimensions"); each log gets a
    leading axis of length 1, which that reduce averages over the workers into a scalar again.
    JAX: nothing."""
    if BACKEND != "tensorflow":
        return
    step = model.train_step

    def train_step(data):
        return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

    keras_internals.replace_train_step(model, train_step)


def rows_on_local_devices(batch_size: int) -> set[int] | None:
    """JAX: the rows of a global batch of `batch_size` that the data layout puts on this
    process's devices. TensorFlow: None (each process feeds the rows it is given)."""
    if BACKEND != "jax":
        return None
    layout = keras.distribution.distribution().get_data_layout((batch_size,)).backend_layout
    held: set[int] = set()
    for index in layout.addressable_devices_indices_map((batch_size,)).values():
        held.update(range(*index[0].indices(batch_size)))
    return held


def gather_from_processes(value: int) -> list[int]:
    """`value` of every process, in process order (a collective: every process calls it)."""
    if BACKEND == "jax":
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(np.int64(value))).ravel().tolist()
    strategy = tf.distribute.get_strategy()
    local = tf.constant([value], tf.int64)
    return strategy.gather(strategy.run(lambda: tf.identity(local)), axis=0).numpy().tolist()


# === Compilation cache =========================================================================


def _cpu_fingerprint() -> str:
    """Names this CPU's instruction sets: XLA's CPU code is built for them, so a cache on a home
    folder shared by unlike machines must not mix their programs."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    text = f"{platform.machine()} {flags}"
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def enable_compilation_cache(cache_root: str | os.PathLike) -> Path | None:
    """JAX: keeps every compiled XLA program under `cache_root` so that later processes reuse it
    instead of compiling again; returns the folder (None on TensorFlow, which has no such cache).

    Every new process compiled its training step (tens of seconds on a 2-core CPU) and the
    small programs of building a model (initial draws, `keras_internals`) again. A folder
    already set by `JAX_COMPILATION_CACHE_DIR` or `jax.config` is kept as it is.
    """
    if BACKEND != "jax":
        return None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    folder = Path(cache_root).expanduser() / f"jax-{jax.__version__}-{_cpu_fingerprint()}"
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Most programs compile in under JAX's default threshold of 1 s.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # JAX decides once per process whether to use the cache; ask it again after the change.
    compilation_cache.reset_cache()
    return folder


# === SavedModel export =========================================================================
# `avlae_keras.export` writes its endpoints with `keras.export.ExportArchive`; this says what the
# backend adds to `ExportArchive.add_endpoint`. TensorFlow: nothing, the endpoint is a
# `tf.function` over the model's variables. JAX: the endpoint is converted with jax2tf (native
# serialization: StableHLO inside an XlaCallModule op) over copies of the tracked variables
# as `tf.Variable`s, with the batch dimension symbolic ("batch") so that any batch size runs.

# Platforms a JAX-exported SavedModel is lowered for, so that it serves on CPU and NVIDIA GPUs
# whichever of them exported it.
EXPORT_PLATFORMS = ("cpu", "cuda")


def export_endpoint_options() -> dict:
    """Extra keyword arguments of `ExportArchive.add_endpoint` for this backend."""
    if BACKEND != "jax":
        return {}
    return {
        "jax2tf_kwargs": {
            "native_serialization": True,
            "native_serialization_platforms": EXPORT_PLATFORMS,
            "with_gradient": False,
        }
    }
