"""The `gprune` command line: eval and fixtures (the library alone), sweep (Ray Tune + MLflow)."""

import argparse
import json
import os
import sys

from gprune.config import PruneConfig
from gprune.methods import SCORERS
from gprune.training.settings import TrainSettings

TRAIN_DEFAULTS = TrainSettings()


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
    header = (f"{'benchmark':<9} {'metric':<24} {'value':>9} {'errors':>6} {'visual kept/full':>16} "
              f"{'TFLOPs exact':>12} {'TFLOPs fastv':>12} {'samples/s':>9} {'prefill ms':>10}")
    print(header)
    print("-" * len(header))
    for result in results.values():
        rows = list(result.metrics.items()) + [(m, None) for m in result.aggregation_errors]
        for i, (metric, value) in enumerate(rows or [("(no metric)", None)]):
            shown = "error" if value is None else f"{value:.4f}"
            first = i == 0
            print(f"{result.benchmark if first else '':<9} {metric:<24} {shown:>9} "
                  + (f"{result.errors:>6} {result.visual_tokens_kept:>7.1f}/{result.visual_tokens_full:<8.1f} "
                     f"{result.tflops_exact:>12.3e} {result.tflops_fastv:>12.3e} {result.samples_per_s:>9.2f} "
                     f"{result.prefill_latency_ms:>10.1f}" if first else ""))
    some = next(iter(results.values()))
    t = some.throughput
    print(f"\nprune: {some.prune}")
    print(f"throughput on {t['device']} ({t['dtype']}), batch size {t['batch_size']}; timed: {t['timed']}")
    print(f"prefill ms: {t['prefill_timed']}")
    print("TFLOPs per sample: exact = 2 x multiply-adds of the whole model (vision, projector, selection, "
          "prefill, decode); fastv = L*(4nd^2+2n^2d+2ndm) MACs of the LM prefill, as in the paper's Table 1")
    for result in results.values():
        if result.note:
            print(f"{result.benchmark}: {result.note}")
        for metric, error in result.aggregation_errors.items():
            print(f"{result.benchmark}: {metric} could not be aggregated: {error}")


def cmd_eval(args) -> int:
    from gprune.benchmarks import check_data, resolve_benchmarks
    from gprune.evaluation import evaluate
    from gprune.loading import load_model

    prune = _prune_from_args(args)  # bad parameters, names and data fail before the model loads
    benchmarks = resolve_benchmarks(args.benchmarks)
    check_data(benchmarks, args.data_dir)
    model, processor = load_model(args.model, prune=prune, device=args.device, dtype=args.dtype)
    results = evaluate(model, processor, benchmarks, limit=args.limit, batch_size=args.batch_size,
                       data_dir=args.data_dir, max_new_tokens=args.max_new_tokens)
    print_results(results)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({name: r.to_dict() for name, r in results.items()}, out, indent=2, default=str)
        print(f"\nwrote {args.json}")
    return 0


def cmd_fixtures(args) -> int:
    from gprune.fixtures import write_fixtures

    out = write_fixtures(args.out, n=args.n, seed=args.seed)
    print(f"wrote fixtures for 8 benchmarks ({args.n} samples each, seed {args.seed}) to {out}")
    print(f"use them with: gprune eval --benchmarks all --data-dir {out}")
    return 0


def cmd_train_tiny(args) -> int:
    from gprune.training.pipeline import run_training
    for flag, value, least in (("--steps", args.steps, 1), ("--vision-steps", args.vision_steps, 0),
                               ("--batch-size", args.batch_size, 2),
                               ("--generated-per-benchmark", args.generated_per_benchmark, 2)):
        if value < least:
            raise ValueError(f"{flag} {value} must be at least {least}")
    settings = TrainSettings(steps=args.steps, seed=args.seed, batch_size=args.batch_size,
                             vision_pretrain_steps=args.vision_steps,
                             generated_per_benchmark=args.generated_per_benchmark)
    run_training(args.out, settings, report=not args.no_report, easyvqa_limit=args.easyvqa_limit)
    print(f"load it with: gprune eval --model {args.out}   (or copy it to gprune/checkpoints/tiny for --model tiny)")
    return 0


def _sort_key(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def print_summary(outcome, printer=print) -> None:
    """The baseline, then the trials in parameter order (the best objective marked), with each
    benchmark's primary metric, so accuracy against pruning ratio reads down the table."""
    from gprune.benchmarks import PRIMARY

    nan = float("nan")
    trials = sorted(outcome.trials, key=lambda t: [_sort_key(t["params"].get(k)) for k in outcome.swept])
    best = max(trials, key=lambda t: t["metrics"].get("objective", float("-inf")), default=None)
    scored = [(name, f"{name}.{metric}") for name, metric in PRIMARY.items() if f"{name}.{metric}" in outcome.baseline]
    header = ("".join(f"{k:>11}" for k in outcome.swept) + "".join(f"{name[:9]:>10}" for name, _ in scored)
              + f" {'retention':>9} {'TFLOPs exact':>12} {'TFLOPs fastv':>12} {'samples/s':>9} {'speedup':>7}  status")
    printer(f"\nsweep {outcome.name}: {len(trials)} trials logged; per benchmark: "
            + ", ".join(f"{name} {key.split('.', 1)[1]}" for name, key in scored))
    printer(header)
    printer("-" * len(header))

    def row(label, m, status):
        printer(label + "".join(f"{m.get(key, nan):>10.3f}" for _, key in scored)
                + f" {m.get('mean_retention', nan):>9.3f} {m.get('tflops_exact', nan):>12.3e}"
                  f" {m.get('tflops_fastv', nan):>12.3e} {m.get('samples_per_s', nan):>9.2f}"
                  f" {m.get('speedup', nan):>7.2f}  {status}")

    row(f"{'unpruned baseline':>{11 * len(outcome.swept)}}", {**outcome.baseline, "mean_retention": 1.0,
                                                               "speedup": 1.0}, "baseline")
    for trial in trials:
        row("".join(f"{trial['params'].get(k, '-'):>11}" for k in outcome.swept), trial["metrics"],
            trial["status"] + ("  <- best" if trial is best else ""))
    printer(f"\nworkers: {len(outcome.workers)} on {sorted({w['device'] for w in outcome.workers})}, weight loads "
            f"{[w['weight_loads'] for w in outcome.workers]}, images through the vision tower "
            f"{[w['images_encoded'] for w in outcome.workers]}")
    printer("retention: each benchmark's primary metric over the same-run unpruned baseline, averaged (NaN where "
            "the baseline scored 0); speedup: samples/s over the baseline's, on the same workers")
    if outcome.interrupted:
        printer(f"INTERRUPTED: finished trials are logged; continue with `gprune sweep --resume {outcome.name}`")
    printer(f"MLflow: experiment {outcome.name!r}, parent run {outcome.parent_run_id}. Browse it with:\n"
            f"  mlflow ui --backend-store-uri {outcome.tracking_uri}")


def cmd_sweep(args) -> int:
    from .spec import load_spec, preset_path

    if sum(x is not None for x in (args.file, args.preset, args.resume)) != 1:
        raise ValueError("give exactly one of SWEEP.yaml, --preset NAME or --resume NAME")
    if args.resume:
        from .runner import load_saved_spec

        if args.tracking_uri:
            raise ValueError("--resume logs to the tracking store the sweep started with; drop --tracking-uri")
        spec = load_saved_spec(args.resume, args.storage)
    else:
        spec = load_spec(args.file or preset_path(args.preset))  # every problem, before Ray starts
        spec.storage = args.storage
    from .runner import run_sweep

    outcome = run_sweep(spec, tracking_uri=args.tracking_uri, address=args.address, resume=bool(args.resume))
    print_summary(outcome)
    return 130 if outcome.interrupted else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gprune", description="G-Prune evaluation and sweep service")
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser("eval", help="evaluate one pruning config on benchmarks")
    evaluate.add_argument("--model", default="tiny", help="'tiny', a local checkpoint dir, or a hub id")
    evaluate.add_argument("--benchmarks", default="easyvqa",
                          help="comma-separated: gqa,vqav2,mme,pope,mmbench,chartqa,docvqa,textvqa,easyvqa, or all")
    evaluate.add_argument("--data-dir", default=os.environ.get("GPRUNE_DATA_DIR"),
                          help="folder holding <benchmark>/ data in the hub layout (default: $GPRUNE_DATA_DIR)")
    evaluate.add_argument("--max-new-tokens", type=int, default=None, help="cap on each task's max_new_tokens")
    evaluate.add_argument("--limit", type=int, default=None, help="samples per benchmark (default: all)")
    evaluate.add_argument("--batch-size", type=int, default=1)
    evaluate.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when present)")
    evaluate.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default by device)")
    evaluate.add_argument("--json", default=None, help="also write results with per-sample records here")
    _add_prune_args(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    fixtures = commands.add_parser("fixtures", help="write small benchmark fixtures in the real schemas")
    fixtures.add_argument("--out", required=True, help="data directory to write <benchmark>/ folders into")
    fixtures.add_argument("--n", type=int, default=40, help="samples per benchmark")
    fixtures.add_argument("--seed", type=int, default=0)
    fixtures.set_defaults(func=cmd_fixtures)

    train = commands.add_parser("train-tiny", help="train the small LLaVA-NeXT behind --model tiny, on CPU")
    train.add_argument("--out", default=".data/tiny-model", help="checkpoint folder to write")
    train.add_argument("--steps", type=int, default=TRAIN_DEFAULTS.steps)
    train.add_argument("--vision-steps", type=int, default=TRAIN_DEFAULTS.vision_pretrain_steps,
                       help="stage 1 steps: the vision tower alone on easy-VQA shape and colour (0 skips it)")
    train.add_argument("--seed", type=int, default=TRAIN_DEFAULTS.seed)
    train.add_argument("--batch-size", type=int, default=TRAIN_DEFAULTS.batch_size)
    train.add_argument("--generated-per-benchmark", type=int, default=TRAIN_DEFAULTS.generated_per_benchmark,
                       help="fixture-style training items written per benchmark")
    train.add_argument("--no-report", action="store_true", help="skip the unpruned evaluation in the model card")
    train.add_argument("--easyvqa-limit", type=int, default=None, help="easy-VQA test questions to report on "
                                                                       "(default: all 9,673)")
    train.set_defaults(func=cmd_train_tiny)

    sweep = commands.add_parser("sweep", help="sweep pruning configs with Ray Tune, tracked in MLflow")
    sweep.add_argument("file", nargs="?", help="a sweep YAML file")
    sweep.add_argument("--preset", help="an embedded sweep, e.g. quickstart")
    sweep.add_argument("--resume", metavar="NAME", help="continue the interrupted sweep NAME")
    sweep.add_argument("--tracking-uri", help="sqlite:///mlflow.db (default), postgresql+psycopg://..., http(s)://...")
    sweep.add_argument("--address", help="an existing Ray cluster (e.g. auto, or HEAD_IP:6379); default: start one")
    sweep.add_argument("--storage", default=".sweeps", help="where Ray Tune keeps sweep state (for --resume)")
    sweep.set_defaults(func=cmd_sweep)

    args = parser.parse_args(argv)
    import datasets
    from loguru import logger

    logger.disable("lmms_eval")  # its task-loading chatter would bury our table
    datasets.disable_progress_bars()
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:  # bad input: a clear message, no traceback
        print(f"gprune: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
