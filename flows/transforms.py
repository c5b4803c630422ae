"""Function transforms for using RAFT in your own code on either backend: `jit` (XLA on
TensorFlow and JAX) and `value_and_input_gradients` (gradients with respect to array arguments,
e.g. the frames); and `repeat`, the fixed-length loop RAFT's refinement runs in. The only
backend-specific code in `flows`; `jit` and `value_and_input_gradients` are exported by `flows`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras

# XLA (jaxlib 0.10) on a CPU hands convolutions, reductions and dots to YNNPACK. For RAFT's many
# small convolutions on a few cores XLA's own kernels were faster (JAX, the demo's RAFT-small:
# 1.2-1.7x in three of four interleaved runs; benchmarks/RESULTS.md, 2026-12-05), so flows' own
# compiled programs on JAX (`jit`, compiled `RAFT.compute_flow`) turn it off per program. Not
# process-wide through XLA_FLAGS: AVLAE's whole TensorFlow training step measured faster with
# YNNPACK (624 vs 731 ms).
_YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"


def _jax_compiler_options() -> dict | None:
    """XLA options of flows' JAX programs on a CPU: no YNNPACK fusions (an empty list of fusion
    types), unless `XLA_FLAGS` names the option."""
    import jax

    if _YNN_OPTION in os.environ.get("XLA_FLAGS", "") or jax.default_backend() != "cpu":
        return None
    return {_YNN_OPTION: ""}


def jit(fn: Callable) -> Callable:
    """`fn` compiled with XLA (`jax.jit` or `tf.function(jit_compile=True)`)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn, compiler_options=_jax_compiler_options())
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True, reduce_retracing=True)
    raise NotImplementedError(
        f"flows supports the 'jax' and 'tensorflow' backends, not {backend!r}"
    )


def is_traced(*tensors) -> bool:
    """Whether these tensors are being traced into a compiled program (a JAX tracer, or a
    TensorFlow graph or `tf.function`) rather than computed eagerly."""
    backend = keras.backend.backend()
    if any(isinstance(t, keras.KerasTensor) for t in tensors):
        return True
    if backend == "jax":
        import jax

        return any(isinstance(t, jax.core.Tracer) for t in tensors)
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    return False


def compile_model_function(model: keras.Model, fn: Callable) -> Callable:
    """`fn(*arrays)`, a function of `model`'s current weights, compiled with XLA; the weights
    are inputs of the compiled program (JAX: `stateless_call`-style, through a
    `keras.StatelessScope`), so later changes to them (e.g. `load_weights`) are seen."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        variables = list(model.variables)

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return fn(*args)

        compiled = jax.jit(stateless, compiler_options=_jax_compiler_options())
        return lambda *args: compiled([v.value for v in variables], *args)
    if backend == "tensorflow":
        import tensorflow as tf

        # One trace per input shape: RAFT needs static heights and widths.
        return tf.function(fn, jit_compile=True, autograph=False)
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


def repeat(step: Callable, carry: tuple, length: int, *, unroll: bool = False, history=False):
    """Applies `carry = step(carry)` `length` times (a Python int) to a tuple of tensors.

    The loop is one loop primitive (`jax.lax.scan` on JAX, `tf.while_loop` with a static
    `maximum_iterations` on TensorFlow), so XLA compiles `step` once whatever `length` is, and
    it stays reverse-mode differentiable on both backends (inside XLA too). `unroll=True` runs a
    Python loop instead (`length` copies of `step` in the graph). `step` must return tensors of
    the shapes and dtypes it was given.

    Returns the final carry, or with `history=True` `(carry, stacked)`, where `stacked` holds the
    carry after every step along a new leading axis (length first).
    """
    carry = tuple(carry)
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}.")
    backend = keras.backend.backend()
    if unroll:
        states = []
        for _ in range(length):
            carry = tuple(step(carry))
            states.append(carry)
        if not history:
            return carry
        return carry, tuple(keras.ops.stack(parts) for parts in zip(*states, strict=True))
    if backend == "jax":
        import jax

        def body(state, _):
            state = tuple(step(state))
            return state, (state if history else None)

        carry, stacked = jax.lax.scan(body, carry, None, length=length)
        return (carry, stacked) if history else carry
    if backend == "tensorflow":
        import tensorflow as tf

        carry = tuple(tf.convert_to_tensor(c) for c in carry)
        arrays = tuple(
            tf.TensorArray(c.dtype, size=length, element_shape=c.shape)
            for c in (carry if history else ())
        )

        def body(i, state, arrays):
            state = tuple(step(state))
            if history:
                arrays = tuple(a.write(i, s) for a, s in zip(arrays, state, strict=True))
            return i + 1, state, arrays

        # A static maximum_iterations lets XLA differentiate the loop (fixed-size accumulators).
        _, carry, arrays = tf.while_loop(
            lambda i, *_: i < length,
            body,
            (tf.constant(0), carry, arrays),
            maximum_iterations=length,
        )
        return (carry, tuple(a.stack() for a in arrays)) if history else carry
    raise NotImplementedError(
        f"flows supports the 'jax' and 'tensorflow' backends, not {backend!r}"
    )
