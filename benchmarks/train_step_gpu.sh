#!/usr/bin/env bash
# The training-step table of issue 13 on one GPU (JAX): the paper's size (128x128x16, batch 16,
# RAFT-large with 12 iterations), float32 and mixed_bfloat16, RAFT unrolled (before) and as one
# loop primitive (after), with compile time, peak memory, FLOPs and the fraction of the GPU's peak.
#
# Prepare on the development machine (the GPU machine has JAX but no Keras):
#     mkdir -p .gpu/wheels && cp ../shared/wheels/gpu-py312/*.whl .gpu/wheels/
# then run this script from the repository root on the GPU machine with .gpu carried along.
# The four configurations are built concurrently (construction is slow and not measured) and
# compiled and timed one at a time (`--timing_lock`). Results: one JSON-lines file per
# configuration and the logs' tails in $OUT (or ./out).
# Environment overrides for a CPU smoke test: RESOLUTION, BATCH, FRAMES, RAFT_ITERS, WIDTH,
# STEPS, SKIP_INSTALL=1.
set -euo pipefail
out=${OUT:-out}
mkdir -p "$out"
if [ -z "${SKIP_INSTALL:-}" ]; then
  pip install --quiet --no-deps --target .gpu/site .gpu/wheels/*.whl
  export PYTHONPATH="$PWD/.gpu/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
common=(
  --resolutions="${RESOLUTION:-128}" --batch_sizes="${BATCH:-16}" --frames="${FRAMES:-16}"
  --raft_iters="${RAFT_ITERS:-12}" --base_channels="${WIDTH:-80}" --steps="${STEPS:-5}"
  --timing_lock="${TMPDIR:-/tmp}/train_step_gpu.lock"
)
python=${PYTHON:-python}
run() {  # name, then train_step.py flags
  local name=$1
  shift
  "$python" benchmarks/train_step.py "${common[@]}" "$@" >"$out/$name.jsonl" 2>"$logs/$name.log" &
}
logs=$(mktemp -d)
# Started a few seconds apart so that they tend to take the timing lock in this order.
run float32_unrolled --precisions=float32 --raft_unroll --flops
sleep 3
run float32_loop --precisions=float32 --noraft_unroll
sleep 3
run bfloat16_loop --precisions=mixed_bfloat16 --raft_dtype=mixed_bfloat16 --noraft_unroll
sleep 3
run bfloat16_unrolled --precisions=mixed_bfloat16 --raft_dtype=mixed_bfloat16 --raft_unroll --flops
sleep 3
# Compile time against one RAFT iteration (the loop's compile should not grow with iterations).
run float32_loop_1_iteration --precisions=float32 --noraft_unroll --raft_iters=1  # last flag wins
wait
for log in "$logs"/*.log; do echo "== $log"; tail -n 20 "$log"; done >"$out/logs.txt"
cat "$out"/*.jsonl
