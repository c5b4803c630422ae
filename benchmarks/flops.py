"""Floating-point operations of a function from XLA's cost analysis, and device peak TFLOP/s.

JAX only: `jax.jit(fn).lower(*args).cost_analysis()` gives XLA's count for the whole function
(on a GPU that is empty, and the compiled function's analysis is used).
TensorFlow exposes the HLO (`experimental_get_compiler_ir`) but no cost analysis in Python, and
the count does not depend on the backend (same operations), so the JAX figure stands for both.

XLA counts the body of a while loop once, whatever its trip count: RAFT's refinement loop
(`lax.scan`) would be counted as one iteration. `unrolled_raft` switches the RAFT models given to
their unrolled form while a function is traced for counting, so every iteration is counted.
"""

from __future__ import annotations

import contextlib

# Dense (no sparsity) peak TFLOP/s from NVIDIA's data sheets. "tf32" is what float32 matrix
# products run at on these GPUs under XLA's default precision; "fp32" is plain CUDA-core FP32.
PEAK_TFLOPS = {
    "H100 PCIe": {"bf16": 756.0, "tf32": 378.0, "fp32": 51.0},
    "H100": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0},  # SXM5
    "H200": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0},
}


def device_peak_tflops(device_name: str) -> dict | None:
    """The peak table row whose key the device name contains (longest key first), or None."""
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if all(part in device_name for part in key.split()):
            return PEAK_TFLOPS[key]
    return None


def accelerator_name() -> str | None:
    """Name of JAX's first device if it is a GPU, else None."""
    import jax

    device = jax.devices()[0]
    return None if device.platform == "cpu" else device.device_kind


@contextlib.contextmanager
def unrolled_raft(*models):
    """Makes the given `flows.RAFT` models unroll their iterations inside the block."""
    previous = [model.unroll for model in models]
    for model in models:
        model.unroll = True
    try:
        yield
    finally:
        for model, value in zip(models, previous, strict=True):
            model.unroll = value


def xla_flops(fn, *args) -> float | None:
    """XLA's floating-point operation count of `jax.jit(fn)(*args)` (before optimisation, which
    matches the compiled count to within a few operations), or None off JAX."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    lowered = jax.jit(fn).lower(*args)
    analysis = _first(lowered.cost_analysis())
    if not analysis:  # seen on a GPU (JAX 0.11): only the compiled function has a cost analysis
        analysis = _first(lowered.compile().cost_analysis())
    return None if not analysis else float(analysis.get("flops", 0.0))


def _first(analysis):
    if isinstance(analysis, list | tuple):  # older JAX: one dict per computation
        return analysis[0] if analysis else None
    return analysis


def utilisation(flops: float | None, seconds: float, dtype: str = "fp32") -> dict:
    """TFLOP/s achieved and, on a GPU in the peak table, the fraction of its peak."""
    if flops is None or seconds <= 0:
        return {}
    result = {"tflops_per_call": flops / 1e12, "achieved_tflop_s": flops / seconds / 1e12}
    name = accelerator_name()
    peak = device_peak_tflops(name) if name else None
    if peak is not None:
        result.update(
            device=name,
            peak_tflop_s=peak[dtype],
            peak_dtype=dtype,
            fraction_of_peak=flops / seconds / 1e12 / peak[dtype],
        )
    return result
