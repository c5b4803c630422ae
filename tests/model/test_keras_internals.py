"""Each private Keras symbol in `avlae_keras.keras_internals`, checked by name: a Keras release that
moves one fails here first."""

import keras
import numpy as np
import pytest

from avlae_keras import keras_internals
from avlae_keras.logged_metrics import RunningMean


def test_metrics_list_and_metric_direction_reach_monitor_callbacks():
    """keras.src.trainers.compile_utils.MetricsList and Metric._direction"""

    class Logged(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.loss_mean = RunningMean("generator_video_loss")
            self.ratio_mean = RunningMean("diversity_ratio")

        def call(self, x):
            return self.dense(x)

        @property
        def metrics(self):
            return [self.loss_mean, self.ratio_mean]

    model = Logged()
    assert isinstance(model.loss_mean, keras_internals.MetricsList)
    stopping = keras.callbacks.EarlyStopping(monitor="generator_video_loss")
    stopping.set_model(model)
    stopping._set_monitor_op()
    assert stopping.monitor_op is keras.ops.less, "MetricsList/_direction no longer read"
    undirected = keras.callbacks.EarlyStopping(monitor="diversity_ratio")
    undirected.set_model(model)
    with pytest.raises(ValueError, match="mode"):
        undirected._set_monitor_op()


def test_current_stateless_scope():
    """keras.src.backend.common.stateless_scope.get_stateless_scope"""
    assert keras_internals.current_stateless_scope() is None
    with keras.StatelessScope() as scope:
        assert keras_internals.current_stateless_scope() is scope


def test_assignments_in_a_stateless_scope_go_through_add_update():
    """keras.StatelessScope.add_update"""
    variable = keras.Variable(np.zeros(3, "float32"))
    with keras_internals.RecordingStatelessScope({}) as scope:
        variable.assign(np.ones(3, "float32"))
    assert id(variable) in scope.updated, "StatelessScope.add_update is no longer called"
    np.testing.assert_array_equal(np.asarray(scope.get_current_value(variable)), np.ones(3))
    np.testing.assert_array_equal(np.asarray(variable), np.zeros(3))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="used on TensorFlow only")
def test_symbolic_build():
    """keras.Model._maybe_symbolic_build (TensorFlow trainer, under a tf.distribute strategy)"""
    import tensorflow as tf

    with tf.distribute.MirroredStrategy(["CPU:0"]).scope():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    keras_internals.symbolic_build(model, (x, y, None))
    assert model.optimizer.built, "Model._maybe_symbolic_build no longer builds the optimizer"


def test_replaced_train_step():
    """Model.train_step replaced on the instance, and Model.train_function reset"""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    model.train_on_batch(x, y)  # a train_function exists before the replacement
    step = model.train_step
    calls = []

    def counted(*args):
        calls.append(1)
        return step(*args)

    keras_internals.replace_train_step(model, counted)
    model.train_on_batch(x, y)
    assert calls, "Model.train_step replaced on the instance is no longer used"


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="used on JAX only")
def test_initial_draws_in_few_programs_give_the_same_values():
    """keras.src.backend.jax.random.normal / uniform / truncated_normal and jax_draw_seed"""
    import jax
    from keras.src.backend.jax import random as jax_random

    keras_internals.draw_initial_values_in_few_programs()  # installed already: no second wrap
    for name in ("normal", "uniform", "truncated_normal"):
        flat_draw = getattr(jax_random, name)
        assert getattr(flat_draw, "_draws_flat", False), f"{name} is not the flat draw"
        shaped_draw = flat_draw.__wrapped__
        for shape, dtype in [((5, 7), "float32"), ((3, 5), "bfloat16")]:
            # A seed generator advances once per draw, as it does unwrapped.
            seeds = keras.random.SeedGenerator(5), keras.random.SeedGenerator(5)
            for _ in range(2):
                expected = shaped_draw(shape, dtype=dtype, seed=seeds[0])
                actual = flat_draw(shape, dtype=dtype, seed=seeds[1])
                assert actual.shape == shape and actual.dtype == expected.dtype
                np.testing.assert_array_equal(
                    np.asarray(actual, "float32"), np.asarray(expected, "float32"), err_msg=name
                )
        # Inside a compiled function the draw is the shaped one.
        jaxpr = str(
            jax.make_jaxpr(lambda key, draw=flat_draw: draw((3, 5), seed=key))(
                jax.random.key_data(jax.random.key(1))
            )
        )
        assert "[16]" not in jaxpr and "[3,5]" in jaxpr, jaxpr
