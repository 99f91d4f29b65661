"""Scheduling at full size: how busy the workers stay when a 27-config grid and its baseline run over the eight
benchmarks at their full size, 8 or 16 workers.

The real dispatcher (workers/pool.Dispatcher) hands the real trial loop's slices (sweep/trial.evaluate_slices:
the baseline first with every slice at the workers at once, then the trials, each keeping `in_flight` slices there,
every finished slice written to its folder) to Ray actors that stand in for GPU workers: no model, each slice
sleeps for its cost on an H200 (BENCHMARKS.md, the 8B geometry, fast path, batch 8: unpruned 6.57 samples/s,
G-Prune 50% 8.82, 70% 8.77, 90% 12.93), divided by --speedup, and returns no records. The trials run as threads of
this process, `concurrency` at a time, as Tune would run them (they only wait on the dispatcher).

Busy fraction: the workers' summed sleeping time over (workers x makespan), makespan from the baseline's first
slice to the last slice's end; lower bound: the summed work over the workers.

    .venv/bin/python bench/scheduling.py [--workers 8,16] [--concurrency 27] [--speedup 500]
"""

import argparse
import math
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

from gprune.config import PruneConfig  # noqa: E402
from gprune.records import BenchmarkResult, batch_timing, throughput  # noqa: E402
from sweep.slices import SliceFolder  # noqa: E402
from sweep.trial import evaluate_slices  # noqa: E402
from workers.pool import Dispatcher  # noqa: E402

FULL = {"gqa": 12_578, "vqav2": 214_354, "mme": 2_374, "pope": 9_000, "mmbench": 4_329, "chartqa": 2_500,
        "docvqa": 5_349, "textvqa": 5_000}  # the rows lmms-eval's tasks read
H200_SAMPLES_PER_S = {0.0: 6.57, 0.5: 8.82, 0.7: 8.77, 0.9: 12.93}  # by G-Prune ratio (BENCHMARKS.md)
GRID = [{"ratio": r, "threshold": s, "iterations": t} for r in (0.5, 0.7, 0.9) for s in (0.3, 0.5, 0.7)
        for t in (1, 3, 5)]


@ray.remote(num_cpus=0)
class StandInWorker:
    """Answers evaluate() as an EvalWorker would, after sleeping for the slice's H200 time; records when it was busy."""

    def __init__(self, speedup: float):
        self.speedup, self.busy = speedup, []

    def evaluate(self, prune, benchmark: str, limit: int, offset: int) -> BenchmarkResult:
        seconds = limit / H200_SAMPLES_PER_S[prune.ratio] / self.speedup
        start = time.time()
        time.sleep(seconds)
        self.busy.append((start, time.time()))
        return BenchmarkResult(
            benchmark=benchmark, task=benchmark, metrics={}, note="", prune=prune.to_dict(), samples=limit, errors=0,
            error_rate=0.0, unscored=0, truncated_images=0, visual_tokens_kept=float("nan"),
            visual_tokens_full=float("nan"), tflops_exact=1.0, tflops_fastv=1.0, **throughput([limit / seconds]),
            model_seconds=seconds, batch_rates=[limit / seconds], **batch_timing(1, 0.0, seconds, 1),
            throughput={"device": "stand-in"}, answers={})

    def aggregate(self, benchmark: str, records: list) -> tuple[dict, dict]:
        return {}, {}

    def busy_periods(self) -> list:
        return self.busy


def run(workers: int, concurrency: int, speedup: float, slice_samples: int) -> dict:
    names = [f"bench-worker-{i}" for i in range(workers)]
    actors = [StandInWorker.options(name=n).remote(speedup) for n in names]
    dispatcher = Dispatcher.remote(names)
    ray.get([a.busy_periods.remote() for a in actors])  # all started
    with tempfile.TemporaryDirectory() as folder:
        fixed = {"method": "gprune", "seed": 0}

        def trial(name: str, config: dict, in_flight: int, baseline=None):
            *_, (merged, _) = evaluate_slices(dispatcher, PruneConfig(**{**fixed, **config}), FULL, 1,
                                              slice_samples, baseline, SliceFolder(f"{folder}/{name}"), in_flight)
            return merged

        started = time.time()
        baseline = trial("baseline", {"ratio": 0.0}, workers)
        in_flight = max(1, math.ceil(workers / concurrency))  # as sweep/runner.SweepRun.in_flight
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda item: trial(f"trial-{item[0]}", item[1], in_flight, baseline), enumerate(GRID)))
        wall = time.time() - started
    periods = [p for a in actors for p in ray.get(a.busy_periods.remote())]
    for actor in [*actors, dispatcher]:
        ray.kill(actor)
    first, last = min(s for s, _ in periods), max(e for _, e in periods)
    busy = sum(e - s for s, e in periods)
    makespan = last - first
    return {"workers": workers, "concurrency": concurrency, "in_flight": in_flight, "slices": len(periods),
            "work_s": busy, "lower_bound_s": busy / workers, "makespan_s": makespan, "wall_s": wall,
            "busy": busy / (workers * makespan), "h200_hours": busy * speedup / workers / 3600}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="8,16")
    parser.add_argument("--concurrency", type=int, default=len(GRID))
    parser.add_argument("--speedup", type=float, default=500, help="the H200's seconds per second of this bench")
    parser.add_argument("--slice-samples", type=int, default=1000)
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    ray.init(num_cpus=max(counts) + 2, include_dashboard=False, log_to_driver=False)
    threading.excepthook = lambda hook: print(f"thread failed: {hook.exc_value!r}")
    print(f"27-config grid + baseline over {len(FULL)} benchmarks, {sum(FULL.values()):,} samples a config, "
          f"slices of {args.slice_samples}; H200 time / {args.speedup:g}")
    print("| workers | trials at once | slices in flight per trial | slices | lower bound s | makespan s | "
          "makespan / bound | workers busy | on an H200 (hours) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for count in counts:
        r = run(count, args.concurrency, args.speedup, args.slice_samples)
        print(f"| {r['workers']} | {r['concurrency']} | {r['in_flight']} | {r['slices']:,} | {r['lower_bound_s']:.1f} "
              f"| {r['makespan_s']:.1f} | {r['makespan_s'] / r['lower_bound_s']:.3f} | {r['busy']:.1%} | "
              f"{r['h200_hours']:.1f} |", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
