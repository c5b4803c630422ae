"""The four optimizers of Algorithm 1 (one per update group) and the group Keras sees as one
`model.optimizer`."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from avlae_keras.backend import default_jit_compile

# `model.optimizer.iterations`, saved with the model's own variables (see `OptimizerGroup`).
ITERATIONS_KEY = "optimizer_iterations"

# The four update groups of Algorithm 1, in the order of `AVLAE.optimizers`.
UPDATE_GROUPS = (
    "video_discriminator",  # Step I: EM* + DV with L_V
    "image_discriminator",  # Step I: EA + DI with L_I
    "generator",  # Step II: FA + FM + G with the adversarial loss
    "latent_reconstruction",  # Step III: EA + EM* + G with L_rec
)


def default_optimizers(learning_rate: float = 2e-4) -> list[keras.optimizers.Optimizer]:
    """The paper's Adam (lr 2e-4, beta1 0.5, beta2 0.999), one per update group."""
    return [
        keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999, name=f"{group}_optimizer")
        for group in UPDATE_GROUPS
    ]


class OptimizerGroup:
    """The four optimizers seen as one `model.optimizer` by Keras's trainers and callbacks.

    - `variables`: the training-step counter, then every optimizer's variables (the JAX trainer
      threads them through its jitted step); `build` builds each optimizer on its own group.
    - `iterations`: the number of training steps, one per `train_step` (one iteration of
      Algorithm 1, whatever number of updates each sub-optimizer makes in it). It is its own
      variable, saved with the model (`.keras` and `.weights.h5`), so it resumes after loading;
      each sub-optimizer keeps its own `iterations` too (its number of updates). A checkpoint
      written before this counter existed loads with the counter left as it was.
    - `optimizers`: the four optimizers in `UPDATE_GROUPS` order. Keras's
      `LearningRateScheduler`, `ReduceLROnPlateau` and `TensorBoard` see this attribute and
      treat each optimizer on its own (logged as `learning_rate_<optimizer name>`).
    - `learning_rate`: setting it sets the rate of all four; reading it gives their common rate
      (AttributeError when they differ: read `optimizers[i].learning_rate` instead).
    """

    def __init__(self, optimizers, variable_groups):
        self.optimizers = list(optimizers)
        self.variable_groups = [list(group) for group in variable_groups]
        # "int": int64 on TensorFlow, int32 on JAX (as Keras's own optimizers); one replica
        # counts under tf.distribute.
        self.iterations = keras.Variable(
            0,
            dtype="int",
            trainable=False,
            aggregation="only_first_replica",
            name="iterations",
        )

    @property
    def variables(self) -> list:
        return [self.iterations, *(v for optimizer in self.optimizers for v in optimizer.variables)]

    @property
    def built(self) -> bool:
        return all(optimizer.built for optimizer in self.optimizers)

    def build(self, _trainable_variables=None) -> None:
        for optimizer, variables in zip(self.optimizers, self.variable_groups, strict=True):
            if not optimizer.built:
                optimizer.build(variables)

    @property
    def learning_rate(self):
        rates = [float(ops.convert_to_numpy(o.learning_rate)) for o in self.optimizers]
        if len(set(rates)) > 1:
            raise AttributeError(
                f"the four optimizers have different learning rates {rates} "
                f"({', '.join(o.name for o in self.optimizers)}): read "
                "`model.optimizers[i].learning_rate`."
            )
        return self.optimizers[0].learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        for optimizer in self.optimizers:
            optimizer.learning_rate = value


class OptimizedByGroups:
    """Mixin of a `keras.Model` trained with one optimizer per update group (the model defines
    `update_groups()`, {group: variables} in `UPDATE_GROUPS` order): `compile` takes the
    optimizers, `model.optimizer` is their `OptimizerGroup`, and the compile config round-trips
    through `.keras` saving."""

    def compile(
        self,
        optimizers: list | None = None,
        jit_compile: bool | None = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
    ) -> None:
        """`optimizers`: one optimizer per update group (`UPDATE_GROUPS` order); default the
        paper's Adam for each. `jit_compile` defaults to XLA on both backends (off
        under a multi-replica `tf.distribute` strategy, which XLA cannot compile)."""
        optimizers = default_optimizers() if optimizers is None else list(optimizers)
        if len(optimizers) != len(UPDATE_GROUPS):
            raise ValueError(
                f"this model needs {len(UPDATE_GROUPS)} optimizers, one per update group "
                f"{UPDATE_GROUPS}; got {len(optimizers)}."
            )
        if jit_compile is None:
            jit_compile = default_jit_compile()
        super().compile(
            optimizer=optimizers[0],
            jit_compile=jit_compile,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
        )
        self.optimizers = optimizers
        self.optimizer = OptimizerGroup(optimizers, self.update_groups().values())
        self.optimizer.build()

    def _optimizer_group(self) -> OptimizerGroup | None:
        """`self.optimizer` once compiled, else None."""
        group = getattr(self, "optimizer", None)
        return group if isinstance(group, OptimizerGroup) else None

    def get_compile_config(self) -> dict:
        if not self.compiled:
            return {}
        return {
            "optimizers": [keras.saving.serialize_keras_object(o) for o in self.optimizers],
            "jit_compile": self.jit_compile,
            "run_eagerly": self.run_eagerly,
            "steps_per_execution": self.steps_per_execution,
        }

    def compile_from_config(self, config: dict) -> None:
        config = dict(config)
        config["optimizers"] = [
            keras.saving.deserialize_keras_object(o) for o in config["optimizers"]
        ]
        self.compile(**config)

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        if self._optimizer_group() is not None:
            store[ITERATIONS_KEY] = self.optimizer.iterations.numpy()

    def load_own_variables(self, store) -> None:
        keys = list(store.keys())
        # Without a compiled optimizer group there is no counter to restore (as Keras drops the
        # optimizer state of a model loaded with compile=False).
        if ITERATIONS_KEY in keys and self._optimizer_group() is not None:
            self.optimizer.iterations.assign(np.asarray(store[ITERATIONS_KEY]).reshape(()))
        super().load_own_variables({k: store[k] for k in keys if k != ITERATIONS_KEY})
