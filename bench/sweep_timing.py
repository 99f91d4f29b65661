"""The 12-trial quickstart sweep: where the wall time goes, what the vision-feature cache saves,
and how many samples ASHA and Optuna evaluate against the full grid.

Runs on one local Ray cluster (this machine), SQLite MLflow in a temporary folder, one CPU worker.

    .venv/bin/python bench/sweep_timing.py
"""

import copy
import os
import tempfile
import time

import ray
import yaml

from sweep.data_dir import prepare_data
from sweep.runner import run_sweep
from sweep.spec import parse_spec, preset_path


def quickstart(name: str, **changes) -> dict:
    spec = yaml.safe_load(preset_path("quickstart").read_text())
    spec = copy.deepcopy(spec)
    for key, value in changes.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    spec["name"] = name
    return spec


def run(name: str, folder: str, **changes):
    spec = parse_spec(quickstart(name, **changes))
    start = time.perf_counter()
    outcome = run_sweep(spec, tracking_uri=f"sqlite:///{folder}/mlflow.db", printer=lambda *a, **k: None)
    return outcome, time.perf_counter() - start


def best(outcome):
    trial = max(outcome.trials, key=lambda t: (t["metrics"].get("objective", 0), -t["metrics"]["tflops_exact"]))
    return {k: trial["params"][k] for k in outcome.swept}, trial["metrics"].get("objective")


def main():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    folder = tempfile.mkdtemp(prefix="gprune-bench-")
    os.chdir(folder)
    preset = quickstart("x")
    print(f"quickstart preset: trained tiny model, {', '.join(preset['benchmarks'])}, "
          f"limit {preset['limit']} per benchmark, "
          "1 CPU worker (1 CPU), trials at concurrency 2, SQLite MLflow; times in seconds")

    prepare_data(parse_spec(quickstart("fixtures")))  # write the fixtures outside the timings
    cached, wall = run("bench-cache", folder)
    uncached, wall_uncached = run("bench-nocache", folder, workers={"cache_mb": 0})
    trials = len(cached.trials)
    model = sum(t["metrics"]["model_seconds"] for t in cached.trials)
    fit, logging = cached.seconds["fit"], cached.seconds["logging"]
    print("\n| part | seconds |\n|---|---|")
    print(f"| whole sweep (worker start and model load included; Ray already up) | {wall:.1f} |")
    print(f"| unpruned baseline (4 benchmarks) | {cached.seconds['baseline']:.1f} |")
    print(f"| Tune fit, {trials} trials | {fit:.1f} |")
    print(f"| - model work in workers (processor + generate) | {model:.1f} |")
    print(f"| - MLflow logging on the driver | {logging:.1f} |")
    print(f"| - Ray/Tune scheduling and trial overhead (the rest) | {fit - model - logging:.1f} |")
    print(f"\nper trial outside model work: {(fit - model) / trials:.2f} s "
          f"(of which MLflow {logging / trials:.2f} s)")
    model_uncached = sum(t["metrics"]["model_seconds"] for t in uncached.trials)
    print("\n| vision-feature cache | images through the vision tower | model work in trials s | sweep wall s |")
    print("|---|---|---|---|")
    print(f"| on (256 MB) | {cached.workers[0]['images_encoded']} | {model:.1f} | {wall:.1f} |")
    print(f"| off | {uncached.workers[0]['images_encoded']} | {model_uncached:.1f} | {wall_uncached:.1f} |")

    asha, _ = run("bench-asha", folder, scheduler={"type": "asha", "slices": 4, "grace_period": 1,
                                                     "reduction_factor": 2})
    optuna, _ = run("bench-optuna", folder,
                    search={"algorithm": "optuna", "num_samples": 6},
                    search_space={"method": "gprune", "ratio": {"uniform": [0.5, 0.9]},
                                  "threshold": {"uniform": [0.3, 0.7]}, "iterations": {"randint": [1, 5]},
                                  "temperature": 0.03})
    print("\n| search | trials | samples evaluated (trials) | best config (objective, then fewest FLOPs) |")
    print("|---|---|---|---|")
    for label, outcome in (("grid", cached), ("grid + ASHA (4 slices)", asha), ("Optuna, 6 trials", optuna)):
        samples = sum(t["metrics"]["samples_evaluated"] for t in outcome.trials)
        config, objective = best(outcome)
        print(f"| {label} | {len(outcome.trials)} | {samples:.0f} | {config} objective={objective:.3f} |")
    ray.shutdown()


if __name__ == "__main__":
    main()
