"""One trial's numbers: each benchmark's lmms-eval metrics, retention against the sweep's own
unpruned baseline, FLOPs per sample in both conventions, throughput and speedup."""

import math
from dataclasses import replace

from gprune.benchmarks import PRIMARY
from gprune.measures import PER_BENCHMARK, Combine, Measure
from gprune.records import BenchmarkResult, batch_timing, throughput


def merge_slices(parts: list[BenchmarkResult]) -> BenchmarkResult:
    """One result from consecutive sample slices of a benchmark, from their numbers alone (no records): counts
    summed, means weighted by the samples each is over, throughput over every batch. lmms-eval's metrics stay the
    last slice's: the trial aggregates them over all records apart (sweep/trial.py)."""
    if len(parts) == 1:
        return parts[0]

    def scored(part: BenchmarkResult) -> int:  # the error-free samples its means are over
        return part.samples - part.errors

    def weighted(key: str) -> float:
        pairs = [(getattr(p, key), scored(p)) for p in parts if scored(p) and not math.isnan(getattr(p, key))]
        total = sum(n for _, n in pairs)
        return sum(v * n for v, n in pairs) / total if total else float("nan")

    samples = sum(p.samples for p in parts)
    errors = sum(p.errors for p in parts)
    rates = [rate for part in parts for rate in part.batch_rates]
    counts = {key: sum(getattr(p, key) for p in parts) for key in ("unscored", Measure.TRUNCATED_IMAGES)}
    means = {key: weighted(key) for key in (Measure.VISUAL_TOKENS_KEPT, "visual_tokens_full", Measure.TFLOPS_EXACT,
                                            Measure.TFLOPS_FASTV)}
    timing = batch_timing(*(sum(getattr(p, key) for p in parts)
                            for key in ("batches", "prefill_seconds", "decode_seconds", "decode_steps")))
    return replace(parts[-1], records=[], samples=samples, errors=errors,
                   error_rate=errors / samples if samples else float("nan"), **counts, **means,
                   **throughput(rates), model_seconds=sum(p.model_seconds for p in parts), batch_rates=rates,
                   **timing, nodes=nodes_of(parts), batch_fallbacks=sum(p.batch_fallbacks for p in parts),
                   fallback_errors=[e for p in parts for e in p.fallback_errors])


def nodes_of(results) -> str:
    """The Ray nodes that evaluated any of `results`, comma-separated."""
    return ",".join(sorted({node for result in results for node in result.nodes.split(",") if node}))


def summarize(benchmarks: dict[str, BenchmarkResult], baseline: dict[str, BenchmarkResult] | None) -> dict:
    """Flat metrics for Tune and MLflow, each as gprune.measures declares it. `benchmarks`: name -> result;
    `baseline`: the same for the unpruned model (None when this IS the baseline)."""
    flat, retentions = {}, []
    for name, result in benchmarks.items():
        for metric, value in result.metrics.items():
            flat[f"{name}.{metric}"] = value
        for measure in PER_BENCHMARK:
            flat[f"{name}.{measure}"] = getattr(result, measure)
        if baseline is not None:
            value = result.metrics.get(PRIMARY[name])
            reference = baseline[name].metrics.get(PRIMARY[name])
            retention = value / reference if value is not None and reference else float("nan")
            flat[f"{name}.{Measure.RETENTION}"] = retention
            retentions.append(retention)
    results = list(benchmarks.values())

    def scored(result: BenchmarkResult) -> int:  # the samples the means are over
        return result.samples - result.errors

    def weighted(key):
        pairs = [(getattr(r, key), scored(r)) for r in results if getattr(r, key) == getattr(r, key)]
        total = sum(n for _, n in pairs)
        return sum(v * n for v, n in pairs) / total if total else float("nan")

    # over all benchmarks: their samples over the time each would take at its median batch rate
    robust_seconds = sum(scored(r) / r.samples_per_s for r in results
                         if r.samples_per_s == r.samples_per_s and scored(r) > 0)
    totals = batch_timing(*(sum(getattr(r, key) for r in results)
                            for key in ("batches", "prefill_seconds", "decode_seconds", "decode_steps")))
    field = {Measure.SAMPLES_EVALUATED: "samples"}  # a measure named apart from the result's field
    for measure in Measure:
        if measure.combine == Combine.WEIGHTED:
            flat[measure] = weighted(measure)
        elif measure.combine == Combine.SUM:
            flat[measure] = sum(getattr(r, field.get(measure, measure)) for r in results)
        elif measure.combine == Combine.TIMING:
            flat[measure] = totals[measure]
    flat[Measure.SAMPLES_PER_S] = sum(map(scored, results)) / robust_seconds if robust_seconds else float("nan")
    samples = flat[Measure.SAMPLES_EVALUATED]
    flat[Measure.ERROR_RATE] = flat[Measure.ERRORS] / samples if samples else float("nan")
    if baseline is not None:
        defined = [r for r in retentions if not math.isnan(r)]
        mean_retention = sum(defined) / len(defined) if defined else float("nan")
        base = summarize(baseline, None)
        flat[Measure.MEAN_RETENTION] = mean_retention
        flat[Measure.SPEEDUP] = flat[Measure.SAMPLES_PER_S] / base[Measure.SAMPLES_PER_S]
        flat[Measure.FLOPS_SPEEDUP] = base[Measure.TFLOPS_EXACT] / flat[Measure.TFLOPS_EXACT]
        flat[Measure.OBJECTIVE] = 0.0 if math.isnan(mean_retention) else mean_retention
    return {str(key): value for key, value in flat.items()}  # plain str keys: Tune and MLflow pickle and compare


def failure(flat: dict, max_error_rate: float) -> str:
    """Why a trial's numbers cannot stand ('' when they can): failed samples score as wrong, but a trial
    that lost more than `max_error_rate` of its samples (or all of a benchmark's) measured its errors."""
    rates = {key.removesuffix(f".{Measure.ERROR_RATE}"): value for key, value in flat.items()
             if key.endswith(f".{Measure.ERROR_RATE}")}
    lost = [name for name, rate in rates.items() if rate == 1]
    if lost:
        return f"every sample failed on {', '.join(lost)}"
    if flat[Measure.ERROR_RATE] > max_error_rate:
        return f"error rate {flat[Measure.ERROR_RATE]:.1%} > max_error_rate {max_error_rate:.1%}"
    return ""
