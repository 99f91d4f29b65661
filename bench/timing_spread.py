"""How much samples/s varies across identical trials of one sweep: the earlier estimator (all samples over all
batch time, the first batch included) against the current one (the median batch rate, the first batch left
out), both computed from the same trials of the same run, so the machine's load is the same for both.

Six identical trials (G-Prune at 70%, the same seed) at concurrency 2 (or --concurrency) with one CPU worker,
POPE and TextVQA fixtures, 40 samples each in batches of 4; SQLite MLflow in a temporary folder.

    .venv/bin/python bench/timing_spread.py
"""

import argparse
import os
import statistics
import tempfile

import ray
from mlflow.tracking import MlflowClient

from sweep.runner import run_sweep
from sweep.spec import parse_spec
from testbed.fixtures import write_fixtures

TRIALS = 6


def spread(values: list[float]) -> str:
    median = statistics.median(values)
    return (f"{min(values):.1f} / {median:.1f} / {max(values):.1f} | {(max(values) - min(values)) / median:.0%} | "
            f"{statistics.stdev(values) / statistics.mean(values):.0%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=2, help="trials at once (they share the one worker)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    folder = tempfile.mkdtemp(prefix="gprune-bench-")
    os.chdir(folder)
    data = write_fixtures(f"{folder}/data", n=40, seed=0)
    spec = parse_spec({"name": "spread", "model": "tiny", "benchmarks": ["pope", "textvqa"], "limit": 40,
                       "data_dir": str(data), "batch_size": 4, "max_new_tokens": 8, "concurrency": args.concurrency,
                       "search": {"algorithm": "grid", "num_samples": TRIALS},
                       "search_space": {"method": "gprune", "ratio": 0.7}, "workers": {"cpus_per_worker": 1}})
    uri = f"sqlite:///{folder}/mlflow.db"
    outcome = run_sweep(spec, tracking_uri=uri, printer=lambda *a, **k: None)
    client = MlflowClient(uri)
    before, after = [], []
    for trial in outcome.trials:
        metrics = client.get_run(trial["run_id"]).data.metrics
        samples = metrics["samples_evaluated"] - metrics["errors"]
        before.append(samples / metrics["model_seconds"])
        after.append(metrics["samples_per_s"])
    print(f"{len(outcome.trials)} identical trials at concurrency {args.concurrency}, one CPU worker, cpu float32, "
          "batch size 4, processor + generate() wall time")
    print("| estimator | samples/s min / median / max | (max - min) / median | std / mean |")
    print("|---|---|---|---|")
    print(f"| all samples / all batch time (before) | {spread(before)} |")
    print(f"| median batch rate, first batch out (now) | {spread(after)} |")
    within = [client.get_run(t["run_id"]).data.metrics["samples_per_s_spread"] for t in outcome.trials]
    print(f"within one trial, interquartile range / median of its batch rates: median {statistics.median(within):.0%}")
    ray.shutdown()


if __name__ == "__main__":
    main()
