"""`gprune report` at the benchmarks' full size: peak memory and wall time of the report command on a sweep whose
runs each hold 255,484 records (the eight benchmarks whole), against the same report on records.json, the format
sweeps wrote before Parquet, in the same run.

Each run's records are synthetic, in the shape lmms-eval's process_results gives each benchmark
(bench/paired_bootstrap.py: trials agree with the baseline on ~90% of answers), with the text fields a real record
has (question, target, prediction), written through the project's own writers: a slice folder of Parquet files
(gprune.record_files, 1,000 records a file, as a sweep's trial leaves them) logged by SweepTracker.log_child, or, for
the earlier format, one records.json per run. The report then runs as `gprune report` in a subprocess, its resident
memory (with any children) sampled every 0.1 s.

    .venv/bin/python bench/report_scale.py [--trials 27] [--json-trials 3]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from paired_bootstrap import FULL, records

from gprune.benchmarks import PRIMARY
from gprune.record_files import write_records
from sweep.slices import Slice
from sweep.tracking import SweepTracker

BENCHMARKS = [b for b in FULL if b != "easyvqa"]  # the eight of the paper
RATIOS, THRESHOLDS, ITERATIONS = (0.5, 0.7, 0.9), (0.3, 0.5, 0.7), (1, 3, 5)
SLICE = 1000
SIZES = {b: FULL[b] for b in BENCHMARKS}  # --fraction shrinks them for a smoke run


def run_records(right: dict, rng) -> dict[str, list[dict]]:
    out = {}
    for benchmark in BENCHMARKS:
        rows = records(benchmark, SIZES[benchmark], right[benchmark], rng)
        for row in rows:
            said = "yes" if row["score"] >= 0.5 else "no"
            row.update(doc_id=str(row["index"]), question=f"Is there a {benchmark} object {row['index']} in the image?",
                       target="yes", prediction=said, visual_tokens_kept=576, visual_tokens_full=2880,
                       prefill_tokens=640, generated_tokens=2, tflops_exact=3.1, tflops_fastv=1.2)
        out[benchmark] = rows
    return out


def metrics(rows: dict, base: dict | None) -> dict:
    out, retentions = {}, []
    for benchmark, batch in rows.items():
        value = float(np.mean([r["score"] for r in batch]))
        out[f"{benchmark}.{PRIMARY[benchmark]}"] = value
        if base:
            retention = value / base[f"{benchmark}.{PRIMARY[benchmark]}"]
            out[f"{benchmark}.retention"], _ = retention, retentions.append(retention)
    mean = float(np.mean(retentions)) if retentions else 1.0
    return {**out, "tflops_exact": 3.1, "tflops_fastv": 1.2, "samples_per_s": 8.0, "visual_tokens_kept": 576,
            "objective": mean, **({"mean_retention": mean, "speedup": 1.3} if base else {})}


def log_sweep(uri: str, name: str, folder: Path, trials: int, parquet: bool) -> float:
    """A sweep's baseline and `trials` trials with their records; returns the records' MB per run on disk."""
    tracker = SweepTracker(uri, name, (folder / "artifacts").as_uri())
    tracker.start({"model": "synthetic"}, {})
    rng = np.random.default_rng(0)
    base_right = {b: rng.random(SIZES[b]) < 0.6 for b in BENCHMARKS}
    configs = [{"ratio": 0.0}] + [{"ratio": r, "threshold": s, "iterations": t} for r in RATIOS
                                  for s in THRESHOLDS for t in ITERATIONS][:trials]
    base_metrics, sizes = None, []
    for i, config in enumerate(configs):
        right = base_right if i == 0 else {b: np.where(rng.random(len(v)) < 0.9, v, ~v) for b, v in base_right.items()}
        rows = run_records(right, rng)
        scores = metrics(rows, base_metrics)
        base_metrics = base_metrics or scores
        out = folder / name / f"run-{i}"
        if parquet:  # as a trial leaves them: a file per slice
            for benchmark, batch in rows.items():
                for start in range(0, len(batch), SLICE):
                    piece = Slice(benchmark, start, len(batch[start:start + SLICE]))
                    write_records(out / piece.file_name, {benchmark: batch[start:start + SLICE]})
        else:  # as sweeps before Parquet logged them
            out.mkdir(parents=True)
            (out / "records.json").write_text(json.dumps(rows))
        sizes.append(sum(p.stat().st_size for p in out.iterdir()) / 1e6)
        role = "baseline" if i == 0 else "trial"
        params = {"method": "gprune", **{k: str(v) for k, v in config.items()}}
        tags = {"gprune.trial_status": role if i == 0 else "finished"}
        if parquet:
            tracker.log_child(role if i == 0 else f"t{i}", role, params, scores, tags, out, role=role)
        else:
            run_id = tracker.log_child(role if i == 0 else f"t{i}", role, params, scores, tags, None, role=role)
            tracker.client.log_artifact(run_id, str(out / "records.json"))
        del rows
    tracker.finish()
    return float(np.mean(sizes))


def report(uri: str, name: str, out: Path) -> tuple[float, float]:
    """`gprune report`: (wall seconds, peak resident MB of it and its children)."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "cli.main", "report", "--experiment", name, "--tracking-uri", uri,
                              "--out", str(out), "--no-log"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    process, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.1)
    if child.returncode != 0:
        raise SystemExit(f"gprune report failed: {child.stderr.read().decode()[-2000:]}")
    return time.perf_counter() - started, peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=27)
    parser.add_argument("--json-trials", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=1.0, help="of each benchmark's rows (a smoke run: 0.01)")
    args = parser.parse_args()
    SIZES.update({b: max(8, round(n * args.fraction)) for b, n in SIZES.items()})
    print(f"{len(BENCHMARKS)} benchmarks: {sum(SIZES.values()):,} records a run")
    print("| records | runs | MB of records a run | written in s | report s | report peak MB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        cases = [("records.json (before)", args.json_trials, False), ("Parquet slices", args.json_trials, True),
                 ("Parquet slices", args.trials, True)]
        for i, (kind, trials, parquet) in enumerate(cases):
            name = f"scale-{i}"
            started = time.perf_counter()
            size = log_sweep(uri, name, folder, trials, parquet)
            written = time.perf_counter() - started
            seconds, peak = report(uri, name, folder / f"report-{i}")
            print(f"| {kind} | baseline + {trials} | {size:.1f} | {written:.0f} | {seconds:.1f} | {peak:,.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
