"""The Tune trainable: one pruning config, evaluated by the worker pool on every benchmark.

Trials are light (a fraction of a CPU, no GPU): the model work happens in the pool's workers.
The sample budget (`limit` per benchmark) is cut into slices; after each slice the trial reports
its metrics so far, which lets ASHA stop poor configs early. Without a scheduler there is one slice.
The per-sample records do not travel through Tune (its saved state would hold copies of every sample):
each report rewrites the trial's records file, which the driver logs as the run's `records.json`.
"""

import os
from dataclasses import replace
from pathlib import Path

import ray
from ray import tune

from gprune.config import PruneConfig
from gprune.measures import Measure
from gprune.records import BenchmarkResult, SampleRecord, records_json

from .metrics import failure, merge_slices, nodes_of, summarize


def slice_bounds(limit: int | None, slices: int) -> list[tuple[int, int | None]]:
    """(offset, count) of each slice; one unbounded slice when there is no limit."""
    if limit is None:
        return [(0, None)]
    edges = [round(limit * i / slices) for i in range(slices + 1)]
    return [(a, b - a) for a, b in zip(edges, edges[1:]) if b > a]


def evaluate_slices(dispatcher, prune: PruneConfig, limits: dict, slices: int,
                    baseline: dict[str, BenchmarkResult] | None):
    """Yields (result per benchmark, flat metrics) after each slice of every benchmark's budget
    (`limits`: benchmark -> samples, None for the whole split)."""
    parts = {name: [] for name in limits}
    bounds = {name: slice_bounds(limit, slices) for name, limit in limits.items()}
    merged = {}
    for step in range(max(len(b) for b in bounds.values())):
        refs = {name: dispatcher.evaluate.remote(prune, name, b[step][1], b[step][0])
                for name, b in bounds.items() if step < len(b)}  # all benchmarks' slices at once
        for name, ref in refs.items():
            parts[name].append(ray.get(ref))
            merged[name] = merge_slices(parts[name])
            if len(parts[name]) > 1:  # lmms-eval's aggregation over all records so far, on a worker that has the task
                metrics, _ = ray.get(dispatcher.aggregate.remote(name, merged[name].records))
                merged[name] = replace(merged[name], metrics=metrics)
        yield dict(merged), summarize(merged, baseline)


def records_file(records_dir: str, trial_id: str) -> Path:
    return Path(records_dir) / f"{trial_id}.json"


def write_records(path: Path, records: dict[str, list[SampleRecord]]) -> None:
    """As JSON (what MLflow gets as records.json); whole or not at all: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(records_json(records))
    os.replace(partial, path)


def run_trial(config: dict, dispatcher, limits: dict, slices: int, fixed: dict, baseline: dict,
              max_error_rate: float, records_dir: str):
    prune = PruneConfig(**{**fixed, **config})  # validated here, once; it crosses Ray as it is
    path = records_file(records_dir, tune.get_context().get_trial_id())
    for step, (merged, flat) in enumerate(evaluate_slices(dispatcher, prune, limits, slices, baseline), 1):
        reason = failure(flat, max_error_rate)
        if reason:
            flat[Measure.OBJECTIVE] = 0.0  # never "best", and schedulers stop it
        write_records(path, {name: result.records for name, result in merged.items()})
        tune.report({**flat, "slice": step, "failure": reason, "nodes": nodes_of(merged.values()),
                     "device": next(iter(merged.values())).throughput["device"]})
