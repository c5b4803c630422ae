"""The four optimizers of Algorithm 1 (one per update group) and the group Keras sees as one
`model.optimizer`."""

from __future__ import annotations

import keras
from keras import ops

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
