#!/usr/bin/env bash
# Everything to run on a GPU card in one call, results under $OUT (or ./gpu-results): the GPU test tier, then
# bench/gpu.py, then one profiled generate() (bench/gpu_profile.py: G-Prune at 90%, batch 1 and 8). The card has torch and transformers but not this project's pin of transformers: carry its wheel in
# .whl/ (see BENCHMARKS.md). Each step has a time limit, so a short lease still brings back what ran.
#   bash bench/gpu_check.sh [TIER_SECONDS] [BENCH_SECONDS] [bench/gpu.py arguments...]   (the profile: 120 s)
set -uo pipefail
out=${OUT:-gpu-results}; mkdir -p "$out"
tier_s=${1:-300}; bench_s=${2:-300}; shift 2 2>/dev/null || shift $#
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:.
fi
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-.}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/card.txt"
timeout "$tier_s" python3 -m pytest -m gpu tests/test_gpu.py -v -p no:cacheprovider 2>&1 | tee "$out/tier.log"
timeout "$bench_s" python3 bench/gpu.py --out "$out/gpu.json" "$@" 2>&1 | tee "$out/bench.log"
for batch in 1 8; do
  timeout 120 python3 bench/gpu_profile.py --batch "$batch" --trace "$out/trace-b$batch.json" 2>&1 \
    | tee "$out/profile-b$batch.log"
done
