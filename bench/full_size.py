"""A trial at a full benchmark's size, on this machine: VQAv2's 214,354 questions (generated fixtures in its schema,
small images), the trained tiny model in two Ray workers, one trial cut into slices of 1,000, all through the
sweep's own pieces: the worker pool and its dispatcher, the trial loop (sweep/trial.evaluate_slices) in a Ray actor
of its own as Tune's trial would be, its slice folder, the driver reading progress from it.

What it measures: the time to load the task (10k and 214k docs); host cost per sample outside the model (the
workers' wall time minus their processor + generate() time, over the samples); the resident memory of the driver
(this process), the trial's process and each worker, sampled every second; the records on disk; each as samples
done grow. Unpruned baseline left out (it would be a second pass of the same size: retention is not what this
measures).

The workers' feature cache has the sweep's default budget (512 MB) and is told the trial's image count as a sweep's
driver tells it (WorkerPool.expect_images): images that cannot all fit shrink it to a window of recent ones, and
these fixtures' images, one per question, never repeat, so it stops; before, it churned and grew each worker to
3.4 GB here (BENCHMARKS.md).

    .venv/bin/python bench/full_size.py [--samples 214354] [--workers 2] [--ratio 0.9] [--cache-mb 512] [--data DIR]
"""

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import ray  # noqa: E402

from gprune.benchmarks import load_task  # noqa: E402
from gprune.config import PruneConfig  # noqa: E402
from sweep.slices import SliceFolder, progress  # noqa: E402
from sweep.trial import aggregated, evaluate_slices  # noqa: E402
from testbed.fixtures import vqav2  # noqa: E402
from workers import WorkerPool  # noqa: E402

MB = 1e6


@ray.remote(num_cpus=0)
class Trial:
    """The trial loop in a process of its own, as Tune runs a trainable."""

    def pid(self) -> int:
        return os.getpid()

    def run(self, dispatcher, prune, sizes, slice_samples, folder, in_flight) -> dict:
        started = time.perf_counter()
        *_, (merged, flat) = evaluate_slices(dispatcher, prune, sizes, 1, slice_samples, None, SliceFolder(folder),
                                             in_flight)
        wall = time.perf_counter() - started
        began = time.perf_counter()
        aggregated(dispatcher, SliceFolder(folder), "vqav2")  # what each report costs at this size
        return {"wall": wall, "aggregation": time.perf_counter() - began, "result": merged["vqav2"], "flat": flat}


def fixture(root: Path, samples: int) -> float:
    """VQAv2 fixtures of `samples` rows under root/vqav2 (kept: reused when there); seconds to write them."""
    if (root / "vqav2").exists():
        return 0.0
    started = time.perf_counter()
    vqav2.write(root / "vqav2", samples, np.random.default_rng(0))
    return time.perf_counter() - started


def task_load(root: Path) -> tuple[float, int]:
    started = time.perf_counter()
    docs = len(load_task("vqav2", str(root)).test_docs())
    return time.perf_counter() - started, docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=214_354)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ratio", type=float, default=0.9)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=2)
    parser.add_argument("--slice-samples", type=int, default=1000)
    parser.add_argument("--data", default="/tmp/gprune-full-size", help="fixtures are written here once")
    parser.add_argument("--cache-mb", type=int, default=512, help="the workers' vision-feature cache budget (the "
                        "sweep's workers.cache_mb)")
    args = parser.parse_args()
    data, small = Path(args.data) / str(args.samples), Path(args.data) / "10000"
    written = fixture(data, args.samples)
    fixture(small, 10_000)
    load_small, load_full = task_load(small), task_load(data)
    print(f"fixtures: {args.samples:,} VQAv2 rows ({sum(p.stat().st_size for p in data.rglob('*.parquet')) / MB:.0f}"
          f" MB) written in {written:.0f} s (0: already there)")
    print(f"task loading (lmms-eval task + test_docs): {load_small[1]:,} docs {load_small[0]:.1f} s, "
          f"{load_full[1]:,} docs {load_full[0]:.1f} s")

    ray.init(num_cpus=args.workers + 1, include_dashboard=False, log_to_driver=False)
    pool = WorkerPool("tiny", args.workers, 1, data_dir=str(data), batch_size=args.batch_size,
                      max_new_tokens=args.max_new_tokens, cache_mb=args.cache_mb)
    workers = pool.info()
    cached = args.cache_mb > 0 and pool.expect_images(args.samples)  # as the sweep's driver does (sweep/runner.py)
    trial = Trial.remote()
    processes = {"driver": psutil.Process(), "trial": psutil.Process(ray.get(trial.pid.remote())),
                 **{f"worker {i}": psutil.Process(w["pid"]) for i, w in enumerate(workers)}}
    # resident memory, and the part of it the process owns: less its file-backed pages (shared libraries, the
    # memory-mapped Arrow data), which the kernel shares between processes and drops under pressure
    peaks, owned = dict.fromkeys(processes, 0.0), dict.fromkeys(processes, 0.0)
    rows, stop = [], threading.Event()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "trial"
        checkpoints = [c for c in (10_000, 50_000, 100_000) if c < args.samples] + [args.samples]
        started = time.perf_counter()

        def watch():
            while not stop.is_set():
                for name, process in processes.items():
                    memory = process.memory_info()
                    peaks[name] = max(peaks[name], memory.rss / MB)
                    owned[name] = max(owned[name], (memory.rss - memory.shared) / MB)
                done, _ = progress(folder)
                if checkpoints and done >= checkpoints[0]:
                    checkpoints.pop(0)
                    size = sum(p.stat().st_size for p in folder.glob("*.parquet")) / MB
                    rows.append((done, time.perf_counter() - started, dict(peaks), dict(owned), size))
                    print(f"  {done:,} samples after {rows[-1][1]:.0f} s", flush=True)
                stop.wait(1.0)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        prune = PruneConfig(method="gprune", ratio=args.ratio)
        out = ray.get(trial.run.remote(pool.dispatcher, prune, {"vqav2": args.samples}, args.slice_samples,
                                       str(folder), args.workers))
        time.sleep(1.5)  # the watcher's last look
        stop.set()
        watcher.join()
        records = sum(p.stat().st_size for p in folder.glob("*.parquet"))
    result = out["result"]
    outside = (out["wall"] * args.workers - result.model_seconds) / result.samples
    print(f"\ntiny model, {args.workers} workers (1 CPU each, feature cache {args.cache_mb} MB: "
          f"{'holds the trial' if cached else 'the images cannot all fit'}), G-Prune "
          f"{args.ratio:.0%}, batch {args.batch_size}, "
          f"max {args.max_new_tokens} new tokens, slices of {args.slice_samples}; {result.samples:,} samples in "
          f"{out['wall']:.0f} s ({result.samples / out['wall']:.1f} samples/s), exact_match "
          f"{result.metrics.get('exact_match', float('nan')):.4f}, errors {result.errors}")
    print(f"host cost outside the model: {1000 * outside:.3f} ms per sample (the workers' wall time, "
          f"{args.workers} x {out['wall']:.0f} s, minus their processor + generate() time, "
          f"{result.model_seconds:.0f} s, over the samples; the trial's Parquet writes overlap them)")
    print(f"aggregation over all {result.samples:,} records (lmms-eval's, on a worker, once per report): "
          f"{out['aggregation']:.1f} s")
    print(f"records: {records / MB:.1f} MB of Parquet ({records / result.samples:.0f} bytes a sample)\n")
    names = list(processes)
    print("Peak resident memory so far, MB, and in brackets the peak of what the process owns (resident less "
          "file-backed pages):\n")
    print("| samples done | elapsed s | " + " | ".join(f"{n} peak MB" for n in names) + " | records MB |")
    print("|---" * (len(names) + 3) + "|")
    for done, elapsed, seen, own, size in rows:
        print(f"| {done:,} | {elapsed:.0f} | " + " | ".join(f"{seen[n]:.0f} ({own[n]:.0f})" for n in names)
              + f" | {size:.1f} |")
    print("\nthe workers' feature caches at the end:", [w["cache"] for w in pool.info()])
    pool.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
