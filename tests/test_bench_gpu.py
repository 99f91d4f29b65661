"""bench/gpu.py's CPU smoke run: the same code path as on a GPU, on a narrow model of the 8B token geometry."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a subprocess building a 2,928-visual-token model
def test_gpu_bench_smoke_runs_every_path_and_keeps_answers(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, "bench/gpu.py", "--smoke", "--repeats", "1", "--batches", "1,2",
                           "--methods", "gprune,random", "--ratios", "0,0.9", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| path | batch | method | ratio |" in done.stdout and "NARROW smoke model" in done.stdout
    rows = json.loads(out.read_text())["rows"]
    assert {(r["path"], r["batch"], r["method"], r["ratio"]) for r in rows} == {
        (p, b, m, r) for p in ("dynamic", "fast") for b in (1, 2)
        for m, r in (("none", 0.0), ("gprune", 0.9), ("random", 0.9))}
    assert all(r["same_answers"] for r in rows)  # the fast path decodes exactly as the dynamic one
    assert all(r["flops_ideal_speedup"] > 1 for r in rows if r["ratio"])
    assert all(r["visual_kept"] == 2928 for r in rows if not r["ratio"])  # one 672x672 image, as on the GPU


@pytest.mark.slow  # a subprocess building a 2,928-visual-token model
def test_gpu_profile_smoke_prints_the_top_operators_and_writes_a_trace(tmp_path):
    trace = tmp_path / "trace.json"
    done = subprocess.run([sys.executable, "bench/gpu_profile.py", "--smoke", "--top", "5", "--trace", str(trace)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gprune at 90%, batch 1" in done.stdout and "aten::mm" in done.stdout and "host-device syncs" in done.stdout
    assert json.loads(trace.read_text())["traceEvents"]


@pytest.mark.slow  # a subprocess building a 2,928-visual-token model
def test_gpu_grid_smoke_runs_the_27_configs_at_the_best_batch_size(tmp_path):
    out = tmp_path / "grid.json"
    done = subprocess.run([sys.executable, "bench/gpu_grid.py", "--smoke", "--repeats", "1", "--batches", "1,2",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    rows, summary = result["rows"], result["summary"]
    assert {(r["ratio"], r["threshold"], r["iterations"]) for r in rows} == {
        (ratio, s, t) for ratio in (0.5, 0.7, 0.9) for s in (0.3, 0.5, 0.7) for t in (1, 5, 10)}
    assert [t["batch"] for t in result["batches_tried"]] == [1, 2]
    best = max(result["batches_tried"], key=lambda t: t["samples_per_s"])["batch"]
    assert summary["batch"] == best and all(r["batch"] == best for r in rows)
    rates = [r["samples_per_s"] for r in rows]
    # the sweep's rate (harmonic: equal samples per config) never exceeds the mean of the configs' rates
    assert min(rates) <= summary["sweep_samples_per_s"] <= summary["mean_samples_per_s"] <= max(rates)
    assert "27 configs at batch" in done.stdout
