"""The Tune trainable: one pruning config, evaluated by the worker pool on every benchmark, a slice at a time.

The sample budget is cut into steps (ASHA's rungs: the trial reports after each; one step without a scheduler) and
each step into slices of at most `slice_samples` (sweep/slices.py). A trial keeps `in_flight` slices at the workers
(enough to keep them busy beside the other running trials, no more: a killed driver loses at most those), writes
each finished one to its folder, and skips those already there: a resumed trial evaluates only what is missing.
The records never travel through Tune or stay in the trial: they are in the folder, which the driver logs to MLflow
when the trial ends and reads for its progress while it runs. lmms-eval's aggregation runs once per report, on a
worker, over the results of the trial's own records.
"""

from dataclasses import replace
from pathlib import Path

import ray
from ray import tune

from gprune.config import PruneConfig
from gprune.measures import Measure
from gprune.record_files import iter_records
from gprune.records import BenchmarkResult, SampleRecord

from .metrics import failure, merge_slices, nodes_of, summarize
from .slices import Slice, SliceFolder, cut


def run_slices(dispatcher, prune: PruneConfig, pieces: list[Slice], folder: SliceFolder, in_flight: int
               ) -> dict[Slice, BenchmarkResult]:
    """Each slice's result (without records), evaluating those not already in `folder`, `in_flight` at a time."""
    results = {piece: folder.done(piece) for piece in pieces}
    todo = [piece for piece in pieces if results[piece] is None]
    pending = {}
    while todo or pending:
        while todo and len(pending) < in_flight:
            piece = todo.pop(0)
            pending[dispatcher.evaluate.remote(prune, piece.benchmark, piece.count, piece.offset)] = piece
        (ready,), _ = ray.wait(list(pending), num_returns=1)
        piece = pending.pop(ready)
        results[piece] = folder.keep(piece, ray.get(ready))
    return results


def aggregated(dispatcher, folder: SliceFolder, benchmark: str) -> tuple[dict, dict]:
    """lmms-eval's aggregation over every record of `benchmark` the folder holds (their results only)."""
    records = [SampleRecord(index=row["index"], results=row["results"])
               for file in folder.files(benchmark) for _, row in iter_records(file, columns=["results"])]
    return ray.get(dispatcher.aggregate.remote(benchmark, records))


def evaluate_slices(dispatcher, prune: PruneConfig, sizes: dict[str, int], steps: int, slice_samples: int,
                    baseline: dict[str, BenchmarkResult] | None, folder: SliceFolder, in_flight: int = 1):
    """Yields (result per benchmark, flat metrics) after each step; `sizes`: benchmark -> samples to evaluate."""
    plan = cut(sizes, steps, slice_samples)
    folder.start(plan)
    parts: dict[str, list[BenchmarkResult]] = {name: [] for name in sizes}
    merged = {}
    for pieces in plan:
        results = run_slices(dispatcher, prune, pieces, folder, in_flight)
        for piece in sorted(pieces, key=lambda p: p.offset):
            parts[piece.benchmark].append(results[piece])
        for name in {piece.benchmark for piece in pieces}:
            merged[name] = merge_slices(parts[name])
            if len(parts[name]) > 1:
                metrics, errors = aggregated(dispatcher, folder, name)
                merged[name] = replace(merged[name], metrics=metrics, aggregation_errors=errors)
        yield dict(merged), summarize(merged, baseline)


def trial_folder(records_dir: str, trial_id: str) -> SliceFolder:
    return SliceFolder(Path(records_dir) / trial_id)


def run_trial(config: dict, dispatcher, sizes: dict, steps: int, slice_samples: int, in_flight: int, fixed: dict,
              baseline: dict, max_error_rate: float, records_dir: str):
    prune = PruneConfig(**{**fixed, **config})  # validated here, once; it crosses Ray as it is
    folder = trial_folder(records_dir, tune.get_context().get_trial_id())
    for step, (merged, flat) in enumerate(evaluate_slices(dispatcher, prune, sizes, steps, slice_samples, baseline,
                                                          folder, in_flight), 1):
        reason = failure(flat, max_error_rate)
        if reason:
            flat[Measure.OBJECTIVE] = 0.0  # never "best", and schedulers stop it
        tune.report({**flat, "slice": step, "failure": reason, "nodes": nodes_of(merged.values()),
                     "device": next(iter(merged.values())).throughput["device"]})
