"""One trial's numbers: each benchmark's lmms-eval metrics, retention against the sweep's own
unpruned baseline, FLOPs per sample in both conventions, throughput and speedup."""

import math
from dataclasses import replace

from gprune.benchmarks import PRIMARY
from gprune.records import BenchmarkResult, batch_timing, summarize_records


def merge_slices(parts: list[BenchmarkResult]) -> BenchmarkResult:
    """One result from consecutive sample slices of a benchmark; the metrics are re-aggregated apart (lmms-eval's
    aggregation runs on a worker), here they stay the first slice's."""
    if len(parts) == 1:
        return parts[0]
    records = [r for part in parts for r in part.records]
    rates = [rate for part in parts for rate in part.batch_rates]
    summary = summarize_records(records, sum(p.model_seconds for p in parts), rates)
    timing = batch_timing(*(sum(getattr(p, key) for p in parts)
                            for key in ("batches", "prefill_seconds", "decode_seconds", "decode_steps")))
    return replace(parts[-1], records=records, **summary, **timing, nodes=nodes_of(parts))


def nodes_of(results) -> str:
    """The Ray nodes that evaluated any of `results`, comma-separated."""
    return ",".join(sorted({node for result in results for node in result.nodes.split(",") if node}))


def summarize(benchmarks: dict[str, BenchmarkResult], baseline: dict[str, BenchmarkResult] | None) -> dict:
    """Flat metrics for Tune and MLflow. `benchmarks`: name -> result; `baseline`: the same for the unpruned model
    (None when this IS the baseline)."""
    flat, retentions = {}, []
    for name, result in benchmarks.items():
        for metric, value in result.metrics.items():
            flat[f"{name}.{metric}"] = value
        for key in ("tflops_exact", "tflops_fastv", "samples_per_s", "samples_per_s_spread", "visual_tokens_kept",
                    "errors", "error_rate", "truncated_images", "prefill_latency_ms", "decode_ms_per_token"):
            flat[f"{name}.{key}"] = getattr(result, key)
        if baseline is not None:
            value = result.metrics.get(PRIMARY[name])
            reference = baseline[name].metrics.get(PRIMARY[name])
            retention = value / reference if value is not None and reference else float("nan")
            flat[f"{name}.retention"] = retention
            retentions.append(retention)
    results = list(benchmarks.values())

    def scored(result: BenchmarkResult) -> int:  # the samples the means are over
        return result.samples - result.errors

    # over all benchmarks: their samples over the time each would take at its median batch rate
    robust_seconds = sum(scored(r) / r.samples_per_s for r in results
                         if r.samples_per_s == r.samples_per_s and scored(r) > 0)

    def weighted(key):
        pairs = [(getattr(r, key), scored(r)) for r in results if getattr(r, key) == getattr(r, key)]
        total = sum(n for _, n in pairs)
        return sum(v * n for v, n in pairs) / total if total else float("nan")

    flat.update({
        "tflops_exact": weighted("tflops_exact"), "tflops_fastv": weighted("tflops_fastv"),
        "visual_tokens_kept": weighted("visual_tokens_kept"),
        "samples_per_s": sum(map(scored, results)) / robust_seconds if robust_seconds else float("nan"),
        "samples_per_s_spread": weighted("samples_per_s_spread"),
        "samples_evaluated": sum(r.samples for r in results),
        "errors": sum(r.errors for r in results),
        "truncated_images": sum(r.truncated_images for r in results),
        "model_seconds": sum(r.model_seconds for r in results),
    })
    flat["error_rate"] = flat["errors"] / flat["samples_evaluated"] if flat["samples_evaluated"] else float("nan")
    totals = batch_timing(*(sum(getattr(r, key) for r in results)
                            for key in ("batches", "prefill_seconds", "decode_seconds", "decode_steps")))
    flat.update(prefill_latency_ms=totals["prefill_latency_ms"], decode_ms_per_token=totals["decode_ms_per_token"])
    if baseline is not None:
        defined = [r for r in retentions if not math.isnan(r)]
        flat["mean_retention"] = sum(defined) / len(defined) if defined else float("nan")
        base = summarize(baseline, None)
        flat["speedup"] = flat["samples_per_s"] / base["samples_per_s"]
        flat["flops_speedup"] = base["tflops_exact"] / flat["tflops_exact"]
        # what schedulers and searchers optimise: retention, 0 where undefined (a baseline that scored 0)
        flat["objective"] = 0.0 if math.isnan(flat["mean_retention"]) else flat["mean_retention"]
    return flat


def failure(flat: dict, max_error_rate: float) -> str:
    """Why a trial's numbers cannot stand ('' when they can): failed samples score as wrong, but a trial
    that lost more than `max_error_rate` of its samples (or all of a benchmark's) measured its errors."""
    rates = {key.removesuffix(".error_rate"): value for key, value in flat.items() if key.endswith(".error_rate")}
    lost = [name for name, rate in rates.items() if rate == 1]
    if lost:
        return f"every sample failed on {', '.join(lost)}"
    if flat["error_rate"] > max_error_rate:
        return f"error rate {flat['error_rate']:.1%} > max_error_rate {max_error_rate:.1%}"
    return ""
