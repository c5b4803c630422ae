"""The private parts of Keras that AVLAE relies on, and nothing else: every use of `keras.src` or
of an underscored Keras attribute goes through this module.

Each entry says what it is for and was checked on the Keras versions in `CHECKED_ON`;
`tests/model/test_keras_internals.py` checks each of them by name, so that a Keras release that
moves one fails there with the symbol's name, not later as a wrong result. A symbol that is gone
raises `KerasInternalsError` on import, naming it.

- `MetricsList`, `set_metric_direction`: Keras's `MonitorCallback` (EarlyStopping,
  ModelCheckpoint, ReduceLROnPlateau) finds a metric's direction (`_direction`) only on metrics
  inside a `MetricsList` or `CompileMetrics` listed in `model.metrics`; AVLAE's running means
  are such lists, so that `mode="auto"` works for its losses.
- `current_stateless_scope`: the innermost `keras.StatelessScope` (JAX training step), whose
  variable values a differentiated re-run of a loss starts from.
- `RecordingStatelessScope`: a `keras.StatelessScope` that also remembers which variables were
  assigned in it; Keras routes every assignment inside a scope through `add_update`.
- `replace_train_step`: a model's `train_step` swapped for a wrapper on the instance; Keras
  builds `train_function` from `self.train_step` when it is next needed.
- `symbolic_build`: what `train_on_batch` runs before its first step (`_maybe_symbolic_build`),
  needed when a batch is handed to `train_function` per replica (TensorFlow, several devices).
- `draw_initial_values_in_few_programs`: JAX only. Keras's initializers draw through
  `keras.src.backend.jax.random`, and JAX compiles a new random program for every weight shape
  (0.1-1 s each on a CPU). Eager draws are made flat at a power-of-two length and cut to shape
  by a cheap slice, which gives the same numbers (with JAX's default partitionable threefry an
  entry depends only on the key and its flat index) from about 20 random programs for any
  model: building the tests' tiny AVLAE took 8.4 s instead of 28.4 s on a 2-core Xeon
  (benchmarks/RESULTS.md, issue 21). Draws inside a compiled function are left as they are.
"""

from __future__ import annotations

import functools
import importlib
import math

import keras
import numpy as np

CHECKED_ON = ("3.15",)


class KerasInternalsError(ImportError):
    """A private Keras symbol that AVLAE uses is missing from the installed Keras."""


def _private(module: str, name: str, purpose: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise KerasInternalsError(
            f"keras {keras.__version__} has no {module}.{name}, which AVLAE uses for {purpose} "
            f"(checked on keras {', '.join(CHECKED_ON)}); install keras "
            f"{CHECKED_ON[-1]}.x or update avlae_keras/keras_internals.py"
        ) from error


MetricsList = _private(
    "keras.src.trainers.compile_utils", "MetricsList", "the direction of logged metrics"
)
_get_stateless_scope = _private(
    "keras.src.backend.common.stateless_scope", "get_stateless_scope", "the JAX training step"
)


def set_metric_direction(metric: keras.metrics.Metric, direction: str) -> None:
    """Tells Keras's MonitorCallback that `metric` improves going "up" or "down"."""
    metric._direction = direction


def current_stateless_scope() -> keras.StatelessScope | None:
    """The innermost active `keras.StatelessScope`, or None."""
    return _get_stateless_scope()


class RecordingStatelessScope(keras.StatelessScope):
    """A `keras.StatelessScope` over `state_mapping` (id(variable) -> value) that also records
    the variables assigned inside it, in `updated` (id -> variable)."""

    def __init__(self, state_mapping: dict):
        super().__init__()
        self.state_mapping = dict(state_mapping)
        self.updated: dict = {}

    def add_update(self, update):
        variable, _ = update
        self.updated[id(variable)] = variable
        super().add_update(update)


def replace_train_step(model: keras.Model, train_step) -> None:
    """Makes `model` train with `train_step(data) -> logs` from its next step on."""
    model.train_step = train_step
    model.train_function = None


def symbolic_build(model: keras.Model, data_batch) -> None:
    """Builds `model`'s metrics and optimizer from one batch, as `train_on_batch` does first."""
    model._maybe_symbolic_build(data_batch=data_batch)


_BUCKETED_DRAWS = ("normal", "uniform", "truncated_normal")


def draw_initial_values_in_few_programs() -> None:
    """JAX: eager `keras.random` normal, uniform and truncated-normal draws (what initializers
    run) come from one compiled program per power-of-two length instead of one per shape, with
    the same values. Idempotent."""
    import jax

    module = _private("keras.src.backend.jax", "random", "drawing initial weights")
    draw_seed = _private("keras.src.backend.jax.random", "jax_draw_seed", "drawing initial weights")

    @functools.partial(jax.jit, static_argnums=(1, 2))
    def cut(flat, size, shape):
        return flat[:size].reshape(shape)

    def bucketed(draw):
        if getattr(draw, "_draws_flat", False):
            return draw

        @functools.wraps(draw)
        def draw_flat(shape, *args, dtype=None, seed=None, **kwargs):
            seed = draw_seed(seed)  # a SeedGenerator advances once, here
            same_values = (
                jax.config.jax_threefry_partitionable
                and jax.config.jax_default_prng_impl == "threefry2x32"
                and not isinstance(seed, jax.core.Tracer)
                and all(isinstance(d, (int, np.integer)) for d in shape)
            )
            if not same_values:
                return draw(shape, *args, dtype=dtype, seed=seed, **kwargs)
            shape = tuple(int(d) for d in shape)
            size = math.prod(shape)
            flat = draw(
                (1 << max(0, size - 1).bit_length(),), *args, dtype=dtype, seed=seed, **kwargs
            )
            return cut(flat, size, shape)

        draw_flat._draws_flat = True
        return draw_flat

    for name in _BUCKETED_DRAWS:
        setattr(module, name, bucketed(getattr(module, name)))
