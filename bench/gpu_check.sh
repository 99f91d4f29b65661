#!/usr/bin/env bash
# Everything to run on a GPU card, results under $OUT (or ./gpu-results), in steps that fit the device tool's
# 10-minute calls:
#   tier     the GPU test tier (pytest -m gpu)                                        ~1.5 min
#   bench    bench/gpu.py: batch 1 and 8, gprune / random / l2norm at 0-90%         ~5.5 min
#   grid     bench/gpu_grid.py: the 27-config G-Prune grid at the best batch size    ~4 min
#   profile  bench/gpu_profile.py: one profiled generate(), G-Prune 90%, batch 1 and 8, with traces   ~2 min
#   step     bench/decode_step.py: one decode step, transformers' own classes against the project's, batch 1  ~1.5 min
#   bash bench/gpu_check.sh [STEPS]     STEPS: comma-separated, default tier,bench,grid,profile,step
# Each step has a time limit (TIER_S, BENCH_S, GRID_S, PROFILE_S, STEP_S seconds), so a short lease still brings back what
# ran; BENCH_ARGS and GRID_ARGS pass arguments on. The card has torch and transformers but not this project's pin of
# transformers: carry its wheel in .whl/ (see BENCHMARKS.md).
set -uo pipefail
out=${OUT:-gpu-results}; mkdir -p "$out"
steps=",${1:-tier,bench,grid,profile,step},"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:.
fi
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-.}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/card.txt"
if [[ $steps == *,tier,* ]]; then
  timeout "${TIER_S:-200}" python3 -m pytest -m gpu tests/test_gpu.py -v -p no:cacheprovider 2>&1 | tee "$out/tier.log"
fi
if [[ $steps == *,bench,* ]]; then
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of arguments
  timeout "${BENCH_S:-420}" python3 bench/gpu.py --repeats 3 --out "$out/gpu.json" ${BENCH_ARGS:-} 2>&1 \
    | tee "$out/bench.log"
fi
if [[ $steps == *,grid,* ]]; then
  # shellcheck disable=SC2086
  timeout "${GRID_S:-300}" python3 bench/gpu_grid.py --out "$out/grid.json" ${GRID_ARGS:-} 2>&1 | tee "$out/grid.log"
fi
if [[ $steps == *,profile,* ]]; then
  for batch in 1 8; do
    timeout "${PROFILE_S:-120}" python3 bench/gpu_profile.py --batch "$batch" --trace "$out/trace-b$batch.json" 2>&1 \
      | tee "$out/profile-b$batch.log"
  done
fi
if [[ $steps == *,step,* ]]; then
  timeout "${STEP_S:-150}" python3 bench/decode_step.py --out "$out/decode_step.json" 2>&1 | tee "$out/step.log"
fi
