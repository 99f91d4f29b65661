"""A sweep's throughput on one GPU: the 27-config G-Prune grid (ratio 50 / 70 / 90% x threshold 0.3 / 0.5 / 0.7 x
iterations 1 / 5 / 10, the paper's Table 3 range) on llama3-llava-next-8b's geometry (testbed/geometry_8b.py: random
weights, bfloat16, SDPA, one 672x672 image a row), 4 new tokens forced, on the fast path (static KV cache, decode
step compiled on CUDA).

First the batch size: each of `--batches` runs the grid's middle config (70%, 0.5, 5); the fastest in samples/s is
the grid's (a size that runs out of memory ends the search). Then every config at that size: samples/s = batch /
median seconds of `--repeats` batches after a warm-up, run as the evaluation runner runs them: each batch's inputs
made on the host one batch ahead (gprune.lookahead), its seconds from asking for them to its answers (processor ms
is the inputs' making, overlapped with the batch before). The grid's average is given two ways: the mean of the 27
configs' samples/s (the issue's measure), and the sweep's own rate, all samples over all seconds (each config
evaluates as many samples).

    python bench/gpu_grid.py [--out grid.json]      # on an H100/H200, ~4 min
    python bench/gpu_grid.py --smoke                # CPU: the narrow model of the same geometry
"""

import argparse
import itertools
import json
import statistics
import time

import torch
import transformers

from gprune import PruneConfig, set_prune
from gprune.decoding import Decoding
from gprune.generation import run_batch
from gprune.lookahead import one_ahead, thread_processor
from testbed.geometry_8b import RAW, bench_setup, prepare_rows

RATIOS, THRESHOLDS, ITERATIONS = (0.5, 0.7, 0.9), (0.3, 0.5, 0.7), (1, 5, 10)
MIDDLE = PruneConfig(method="gprune", ratio=0.7, threshold=0.5, iterations=5)


def measure(model, processor, prune: PruneConfig, batch: int, new_tokens: int, decoding: Decoding, repeats: int):
    """samples/s and the median stage times of one config at one batch size: `repeats` + 1 batches as the
    evaluation runner runs them (each prepared on the host one batch ahead, gprune.lookahead), the first (which
    compiles a new shape and waits for its own inputs) left out."""
    set_prune(model, processor, prune)
    seconds, runs, preparing = [], [], thread_processor(processor)
    for prepared, asked in one_ahead(range(repeats + 1), lambda _: prepare_rows(preparing, batch, new_tokens)):
        runs.append(run_batch(model, processor, prepared, decoding, RAW))
        seconds.append(time.perf_counter() - asked)
    seconds, runs = seconds[1:], runs[1:]
    return {"ratio": prune.ratio, "threshold": prune.threshold, "iterations": prune.iterations, "batch": batch,
            "samples_per_s": batch / statistics.median(seconds),
            "processor_ms": 1000 * statistics.median(r.processor_seconds for r in runs),
            "prefill_ms": 1000 * statistics.median(r.prefill_seconds for r in runs),
            "decode_ms_per_token": 1000 * statistics.median(r.decode_seconds / max(1, r.decode_steps) for r in runs)}


def best_batch(model, processor, batches, new_tokens, decoding, repeats, cuda):
    """The batch size at which the middle config serves most samples/s, and every size's measurement."""
    tried = []
    for batch in batches:
        try:
            tried.append(measure(model, processor, MIDDLE, batch, new_tokens, decoding, repeats))
        except torch.OutOfMemoryError:
            print(f"batch {batch}: out of memory; larger sizes not tried")
            break
        finally:
            if cuda:
                torch.cuda.empty_cache()
        print(f"batch {batch}: {tried[-1]['samples_per_s']:.2f} samples/s at {MIDDLE.ratio:.0%}, s={MIDDLE.threshold},"
              f" t={MIDDLE.iterations}", flush=True)
    if not tried:
        raise SystemExit("no batch size fits on this device")
    return max(tried, key=lambda m: m["samples_per_s"])["batch"], tried


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="CPU, a narrow model of the same token geometry")
    parser.add_argument("--batches", default="8,16,32", help="batch sizes to try, ascending")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=4)
    parser.add_argument("--out", default=None, help="also write every number as JSON here")
    args = parser.parse_args()

    setup = bench_setup(args.smoke)
    model, processor, decoding, card = setup.model, setup.processor, setup.fast, setup.card
    started = time.perf_counter()
    print(f"{setup.workload}, random weights, bfloat16, SDPA, {card}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}; one 672x672 image a row; {args.new_tokens} new tokens forced; "
          f"{decoding.describe(setup.device)}; medians of {args.repeats}")
    batch, tried = best_batch(model, processor, [int(b) for b in args.batches.split(",")], args.new_tokens,
                              decoding, args.repeats, setup.device.type == "cuda")
    print(f"\nthe grid at batch {batch}\n\n| ratio | threshold | iterations | processor ms | prefill ms "
          "| decode ms/token | samples/s |\n|---|---|---|---|---|---|---|")
    rows = []
    for ratio, threshold, iterations in itertools.product(RATIOS, THRESHOLDS, ITERATIONS):
        prune = PruneConfig(method="gprune", ratio=ratio, threshold=threshold, iterations=iterations)
        row = measure(model, processor, prune, batch, args.new_tokens, decoding, args.repeats)
        rows.append(row)
        print(f"| {ratio:.0%} | {threshold} | {iterations} | {row['processor_ms']:.1f} | {row['prefill_ms']:.1f} "
              f"| {row['decode_ms_per_token']:.2f} | {row['samples_per_s']:.2f} |", flush=True)
    rates = [row["samples_per_s"] for row in rows]
    summary = {"batch": batch, "configs": len(rows), "mean_samples_per_s": statistics.mean(rates),
               "sweep_samples_per_s": len(rates) / sum(1 / rate for rate in rates),  # equal samples per config
               "min_samples_per_s": min(rates), "max_samples_per_s": max(rates)}
    print(f"\n{len(rows)} configs at batch {batch} on {card}: mean {summary['mean_samples_per_s']:.2f} samples/s "
          f"(min {summary['min_samples_per_s']:.2f}, max {summary['max_samples_per_s']:.2f}); the sweep's rate "
          f"(all samples / all seconds) {summary['sweep_samples_per_s']:.2f} samples/s; "
          f"{time.perf_counter() - started:.0f} s in all")
    if args.out:
        with open(args.out, "w") as out:
            json.dump({"card": card, "torch": torch.__version__, "transformers": transformers.__version__,
                       "new_tokens": args.new_tokens, "batches_tried": tried, "summary": summary, "rows": rows},
                      out, indent=2)


if __name__ == "__main__":
    main()
