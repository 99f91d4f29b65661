"""The `gprune` command line."""

import argparse
import json
import sys

from .config import PruneConfig
from .methods import SCORERS


def _add_prune_args(parser: argparse.ArgumentParser) -> None:
    defaults = PruneConfig()
    parser.add_argument("--method", default=defaults.method, choices=sorted(SCORERS))
    parser.add_argument("--ratio", type=float, default=0.7, help="fraction of visual tokens removed (0 = none)")
    parser.add_argument("--threshold", type=float, default=defaults.threshold, help="similarity threshold s")
    parser.add_argument("--iterations", type=int, default=defaults.iterations, help="propagation steps t")
    parser.add_argument("--temperature", type=float, default=defaults.temperature, help="row-softmax temperature")
    parser.add_argument("--positions", default=defaults.positions, choices=["original", "compact"])
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the random method")


def _prune_from_args(args) -> PruneConfig:
    return PruneConfig(method=args.method, ratio=args.ratio, threshold=args.threshold, iterations=args.iterations,
                       temperature=args.temperature, positions=args.positions, seed=args.seed)


def print_results(results) -> None:
    header = f"{'benchmark':<10} {'metric':<12} {'value':>7} {'errors':>6} {'kept/full tokens':>17} " \
             f"{'TFLOPs exact':>12} {'TFLOPs fastv':>12} {'samples/s':>9} {'prefill ms':>10}"
    print(header)
    print("-" * len(header))
    for result in results.values():
        for metric, value in result.metrics.items():
            print(f"{result.benchmark:<10} {metric:<12} {100 * value:>7.2f} {result.errors:>6} "
                  f"{result.visual_tokens_kept:>8.1f}/{result.visual_tokens_full:<8.1f} "
                  f"{result.tflops_exact:>12.3e} {result.tflops_fastv:>12.3e} "
                  f"{result.samples_per_s:>9.2f} {result.prefill_latency_ms:>10.1f}")
    some = next(iter(results.values()))
    t = some.throughput
    print(f"\nprune: {some.prune}")
    print(f"throughput on {t['device']} ({t['dtype']}), batch size {t['batch_size']}; timed: {t['timed']}")
    print(f"prefill ms: {t['prefill_timed']}")
    print("TFLOPs per sample: exact = 2 x multiply-adds of the whole model (vision, projector, selection, "
          "prefill, decode); fastv = L*(4nd^2+2n^2d+2ndm) MACs of the LM prefill, as in the paper's Table 1")


def cmd_eval(args) -> int:
    from .benchmarks import get_benchmark
    from .evaluation import evaluate
    from .loading import load_model

    prune = _prune_from_args(args)  # bad parameters and names fail before the model loads
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    for name in benchmarks:
        get_benchmark(name)
    model, processor = load_model(args.model, prune=prune, device=args.device, dtype=args.dtype)
    results = evaluate(model, processor, benchmarks, limit=args.limit, batch_size=args.batch_size)
    print_results(results)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({name: r.to_dict() for name, r in results.items()}, out, indent=2)
        print(f"\nwrote {args.json}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gprune", description="G-Prune evaluation and sweep service")
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser("eval", help="evaluate one pruning config on benchmarks")
    evaluate.add_argument("--model", default="tiny", help="'tiny', a local checkpoint dir, or a hub id")
    evaluate.add_argument("--benchmarks", default="easyvqa", help="comma-separated benchmark names")
    evaluate.add_argument("--limit", type=int, default=None, help="samples per benchmark (default: all)")
    evaluate.add_argument("--batch-size", type=int, default=1)
    evaluate.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when present)")
    evaluate.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default by device)")
    evaluate.add_argument("--json", default=None, help="also write results with per-sample records here")
    _add_prune_args(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"gprune: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
