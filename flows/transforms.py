"""Function transforms for using RAFT in your own code on either backend: `jit` (XLA on
TensorFlow and JAX) and `value_and_input_gradients` (gradients with respect to array arguments,
e.g. the frames). The only backend-specific code in `flows`; exported as `flows.jit` and
`flows.value_and_input_gradients`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras


def jit(fn: Callable) -> Callable:
    """`fn` compiled with XLA (`jax.jit` or `tf.function(jit_compile=True)`)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True, reduce_retracing=True)
    raise NotImplementedError(
        f"flows supports the 'jax' and 'tensorflow' backends, not {backend!r}"
    )


def value_and_input_gradients(fn: Callable, argnums: Sequence[int] = (0,)) -> Callable:
    """A function returning `(fn(*args), [d fn / d args[i] for i in argnums])`.

    `fn` must return a scalar. Arguments are arrays; gradients come back as backend tensors.
    """
    argnums = tuple(argnums)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grad_fn = jax.value_and_grad(fn, argnums=argnums)

        def wrapped(*args):
            value, grads = grad_fn(*args)
            return value, list(grads)

        return wrapped
    if backend == "tensorflow":
        import tensorflow as tf

        def wrapped(*args):
            args = [tf.convert_to_tensor(a) for a in args]
            with tf.GradientTape() as tape:
                for i in argnums:
                    tape.watch(args[i])
                value = fn(*args)
            return value, tape.gradient(value, [args[i] for i in argnums])

        return wrapped
    raise NotImplementedError(
        f"flows supports the 'jax' and 'tensorflow' backends, not {backend!r}"
    )
