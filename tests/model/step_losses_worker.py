"""Runs in a subprocess (its own backend / device count) and prints JSON results.

`python -m tests.model.step_losses_worker parity DIR`: rebuilds the tiny AVLAE, loads
DIR/weights.weights.h5, writes each step's gradients on DIR/inputs.npz (`step_gradients`) to
DIR/gradients_<backend>.npz and prints the losses of the same forward, then takes one
`fixed_training_step` on DIR/step_inputs.npz and writes its result to DIR/step_<backend>.npz.
`python -m tests.model.step_losses_worker distributed DIR`: on 2 devices, from the
weights DIR/weights.weights.h5, prints the step losses of the same batch computed on one device
and split across two, writes Step III's gradients both ways to DIR/gradients_1_device.npz and
DIR/gradients_2_devices.npz, writes one `fixed_training_step` split across the two devices to
DIR/step_<backend>_2_devices.npz, then prints the logs and optimizer iterations of one more
data-parallel `fit` step on the same batch (the same compiled step: no second trace).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np


def _prepare_devices(mode: str) -> None:
    if mode != "distributed":
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
        )
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )


def build_tiny_model():
    """The tests' tiny AVLAE (tests/model/conftest.py's TINY_CONFIG, seed 7) with a RAFT-small
    of its own. On TensorFlow that RAFT runs op by op when called eagerly (`step_gradients`):
    its compiled forward costs an XLA compile per input shape and device, more than these tiny
    forwards; in a traced step (`fixed_training_step`) it is traced with the step either way."""
    from avlae_keras import AVLAE
    from flows import RAFT
    from tests.model.conftest import TINY_CONFIG
    from tests.test_case import eager_on_tensorflow

    return AVLAE(**TINY_CONFIG, flow_estimator=eager_on_tensorflow(RAFT(variant="small")), seed=7)


def _to_floats(losses) -> dict:
    import keras

    return {k: float(keras.ops.convert_to_numpy(v)) for k, v in losses.items()}


def compute_step_losses(
    model,
    videos,
    z_a,
    z_m,
    real_frame_index,
    fake_frame_index,
    steps=("step_1", "step_2", "step_3"),
) -> dict:
    """The losses of `steps` (by default all three) of `model` for given latents and frame
    indices, without updating anything: {"step_1", "step_2", "step_3"} and every term of each.
    Deterministic, for checks."""
    from keras import ops

    from avlae_keras.input_checks import check_videos

    terms = {}
    if "step_1" in steps:
        videos = check_videos(videos, model.frames, model.resolution, "compute_step_losses")
        videos = ops.cast(videos, "float32")
        fake_videos = ops.stop_gradient(model.synthesize(*model.map_latents(z_a, z_m)))
        indices = (real_frame_index, fake_frame_index)
        terms["step_1"] = model.discriminator_loss_terms(videos, fake_videos, *indices)
    if "step_2" in steps:
        terms["step_2"] = model.generator_loss_terms(z_a, z_m, fake_frame_index)
    if "step_3" in steps:
        terms["step_3"] = model.latent_reconstruction_terms(z_a, z_m, fake_frame_index)
    losses = {step: sum(step_terms.values()) for step, step_terms in terms.items()}
    for step_terms in terms.values():
        losses.update(step_terms)
    return losses


# Each step's loss and the update groups it updates (`model.update_groups()`).
STEP_GROUPS = {
    "step_1": ("video_discriminator", "image_discriminator"),
    "step_2": ("generator",),
    "step_3": ("latent_reconstruction",),
}


def _gradients_and_losses(model, batch: dict, steps) -> tuple[dict, dict]:
    """Each of `steps`' gradients, and every loss of `compute_step_losses`: the first step's
    forward computes all three steps' losses, the later ones only their own."""
    from avlae_keras.backend import loss_and_gradients

    groups = model.update_groups()
    gradients, losses = {}, None
    for step in steps:
        variables = [v for name in STEP_GROUPS[step] for v in groups[name]]

        def loss_fn(step=step, computed=tuple(STEP_GROUPS) if step == steps[0] else (step,)):
            terms = compute_step_losses(model, **batch, steps=computed)
            return terms[step], terms

        _, terms, gradients_of_step = loss_and_gradients(loss_fn, variables)
        losses = terms if losses is None else losses
        gradients.update({f"{step}_{i:03d}": g for i, g in enumerate(gradients_of_step)})
    return gradients, losses


def _arrays(tensors: dict) -> dict[str, np.ndarray]:
    import keras

    return {k: np.array(keras.ops.convert_to_numpy(v)) for k, v in tensors.items()}


def step_gradients(model, inputs: dict, steps=tuple(STEP_GROUPS)) -> tuple[dict, dict]:
    """The gradient of each step's loss (`compute_step_losses` on `inputs`) with respect to the
    variables that step updates, from the model's current weights, without updating anything:
    arrays "step_1_000", ... in `update_groups()` order; and every loss of the same forward, as
    floats. Unlike a training step, every step starts from the same weights, so that the
    backends' gradients can be compared entry by entry. JAX computes them in one jitted
    function over the model's variables (inputs placed on several devices split the batch over
    them)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        variables = list(model.variables)

        def stateless(values, batch):
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return _gradients_and_losses(model, batch, steps)

        gradients, losses = jax.jit(stateless)([v.value for v in variables], inputs)
    else:
        gradients, losses = _gradients_and_losses(model, inputs, steps)
    return _arrays(gradients), _to_floats(losses)


def _replica_step_gradients(strategy, model, split_inputs: dict, steps) -> tuple[dict, dict]:
    """`step_gradients` under a TensorFlow strategy: each replica's gradient of its share of the
    loss (`loss_and_gradients` divides by the replicas), summed over the replicas; the losses
    averaged over the replicas."""
    import tensorflow as tf

    gradients, losses = strategy.run(
        lambda **batch: _gradients_and_losses(model, batch, steps), kwargs=split_inputs
    )

    def reduce(operation, tensors):
        return {k: strategy.reduce(operation, v, axis=None) for k, v in tensors.items()}

    return (
        _arrays(reduce(tf.distribute.ReduceOp.SUM, gradients)),
        _to_floats(reduce(tf.distribute.ReduceOp.MEAN, losses)),
    )


def fixed_training_step(model, inputs: dict) -> dict:
    """One training step (`fit` on one batch) on `inputs["videos"]` with the latents and frame
    indices of `inputs` in place of the seed generator's draws (TensorFlow and JAX draw
    different numbers from the same seed); returns the trainable weights before and after, and
    the Adam first moments (0.5 x the gradients) of the four optimizers, as arrays
    "before_000", "after_000", ..., "momentum_000", ... in a fixed order, "momentum_owner" (the
    trainable variable of each first moment) and "iterations".

    Every draw of the step (Steps I, II and III) gets the same z_a, z_m and frame indices. Under
    `tf.distribute` each replica takes its rows of the global batch, as `draw_per_replica` does.
    TensorFlow runs without XLA (a one-device XLA compile of the step costs minutes on CPU)."""
    import keras

    from avlae_keras.backend import draw_per_replica

    def fixed(name, dtype):
        # `rows` may be a tensor under `tf.distribute`: slice the tensor, not the array.
        return lambda rows: keras.ops.convert_to_tensor(inputs[name], dtype)[:rows]

    model._sample_latents = lambda batch_size: (
        draw_per_replica(fixed("z_a", "float32"), batch_size),
        draw_per_replica(fixed("z_m", "float32"), batch_size),
    )
    model._sample_frame_indices = lambda batch_size: draw_per_replica(
        fixed("fake_frame_index", "int32"), batch_size
    )
    variables = model.trainable_variables
    results = {f"before_{i:03d}": _numpy(v) for i, v in enumerate(variables)}
    model.compile(jit_compile=keras.backend.backend() == "jax")
    # `fit`, not `train_on_batch`: under `tf.distribute`, train_on_batch hands every replica
    # the whole batch instead of its share.
    videos = inputs["videos"]
    model.fit(videos, batch_size=len(videos), epochs=1, shuffle=False, verbose=0)
    results.update({f"after_{i:03d}": _numpy(v) for i, v in enumerate(variables)})
    momenta = [v for o in model.optimizers for v in o.variables if "momentum" in v.name]
    groups = list(model.update_groups().values())
    assert len(momenta) == sum(len(group) for group in groups)
    results.update({f"momentum_{i:03d}": _numpy(v) for i, v in enumerate(momenta)})
    # Which trainable variable each first moment belongs to (optimizers build them in order).
    index = {id(v): i for i, v in enumerate(variables)}
    results["momentum_owner"] = np.array([index[id(v)] for group in groups for v in group])
    # And which update group (0-3: Step I video, Step I image, Step II, Step III) it belongs to.
    results["momentum_group"] = np.array([g for g, group in enumerate(groups) for _ in group])
    results["iterations"] = np.array(_iterations(model))
    return results


def _iterations(model) -> list[int]:
    """Each optimizer's step counter (`.value` of a MirroredVariable's does not convert to
    NumPy, the variable itself does)."""
    import keras

    return [int(keras.ops.convert_to_numpy(o.iterations)) for o in model.optimizers]


def _numpy(variable) -> np.ndarray:
    import keras

    return np.array(keras.ops.convert_to_numpy(variable.value))


def _save_step(directory: str, name: str, results: dict) -> None:
    np.savez(os.path.join(directory, f"{name}.npz"), **results)


def parity(directory: str) -> dict:
    import keras

    model = build_tiny_model()
    model.load_weights(os.path.join(directory, "weights.weights.h5"))
    inputs = dict(np.load(os.path.join(directory, "inputs.npz")))
    gradients, losses = step_gradients(model, inputs)
    _save_step(directory, f"gradients_{keras.backend.backend()}", gradients)
    step_inputs = dict(np.load(os.path.join(directory, "step_inputs.npz")))
    step = fixed_training_step(model, step_inputs)
    _save_step(directory, f"step_{keras.backend.backend()}", step)
    return losses


def _fixed_step_then_fit_on_two_devices(model, directory: str) -> dict:
    """`fixed_training_step` from DIR/weights.weights.h5 with the batch split over 2 devices,
    then one more `fit` step on the same batch, which reuses the compiled step (a second trace
    costs about 40 s of CPU on TensorFlow); returns that fit's last logs and the optimizers'
    iterations."""
    import keras

    model.load_weights(os.path.join(directory, "weights.weights.h5"))
    step_inputs = dict(np.load(os.path.join(directory, "step_inputs.npz")))
    step = fixed_training_step(model, step_inputs)
    _save_step(directory, f"step_{keras.backend.backend()}_2_devices", step)
    videos = step_inputs["videos"]
    history = model.fit(videos, batch_size=len(videos), epochs=1, shuffle=False, verbose=0)
    return {
        "fit": {k: v[-1] for k, v in history.history.items()},
        "iterations": _iterations(model),
    }


def distributed(directory: str) -> dict:
    import keras

    inputs = dict(np.load(os.path.join(directory, "inputs.npz")))
    results = {}
    if keras.backend.backend() == "jax":
        import jax

        devices = jax.devices()
        distribution = keras.distribution.DataParallel(devices=devices)
        keras.distribution.set_distribution(distribution)
        model = build_tiny_model()
        model.load_weights(os.path.join(directory, "weights.weights.h5"))
        sharded = {
            k: keras.distribution.distribute_tensor(v, distribution.get_data_layout(v.shape))
            for k, v in inputs.items()
        }
        assert len(sharded["videos"].sharding.device_set) == 2
        # NumPy inputs follow the replicated variables: every device computes the whole batch.
        gradients, results["one_device"] = step_gradients(model, inputs, ("step_3",))
        _save_step(directory, "gradients_1_device", gradients)
        gradients, results["two_devices"] = step_gradients(model, sharded, ("step_3",))
        _save_step(directory, "gradients_2_devices", gradients)
        results.update(_fixed_step_then_fit_on_two_devices(model, directory))
        results["devices"] = len(devices)
        return results

    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build_tiny_model()
        model.load_weights(os.path.join(directory, "weights.weights.h5"))
    half = inputs["videos"].shape[0] // 2

    def split(array):
        return strategy.experimental_distribute_values_from_function(
            lambda context: array[
                context.replica_id_in_sync_group * half : (context.replica_id_in_sync_group + 1)
                * half
            ]
        )

    gradients, results["one_device"] = step_gradients(model, inputs, ("step_3",))
    _save_step(directory, "gradients_1_device", gradients)
    split_inputs = {k: split(v) for k, v in inputs.items()}
    gradients, results["two_devices"] = _replica_step_gradients(
        strategy, model, split_inputs, ("step_3",)
    )
    _save_step(directory, "gradients_2_devices", gradients)
    with strategy.scope():
        results.update(_fixed_step_then_fit_on_two_devices(model, directory))
    results["devices"] = strategy.num_replicas_in_sync
    return results


def initial_weights(directory: str, seed: int) -> None:
    """Writes the tiny AVLAE's initial weights drawn from `seed` (RAFT's included) to
    DIR/weights.weights.h5."""
    import keras

    keras.utils.set_random_seed(seed)
    build_tiny_model().save_weights(os.path.join(directory, "weights.weights.h5"))


def main() -> None:
    mode, directory = sys.argv[1], sys.argv[2]
    _prepare_devices(mode)
    if mode == "parity":
        results = parity(directory)
    else:
        results = distributed(directory)
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()
