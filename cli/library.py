"""Commands that need the library and the test bed only: eval, fixtures, train-tiny, benchmarks."""


import argparse
import json
import os
import sys

from tabulate import tabulate

from gprune.answers import AnswerRules
from gprune.config import PruneConfig
from gprune.decoding import Decoding
from testbed.training.settings import TrainSettings

from .commands import add_command
from .dataclass_args import add_dataclass_args, from_args, given_args

FLOPS_NOTE = ("TFLOPs per sample: exact = 2 x multiply-adds of the whole model (vision, projector, selection, "
              "prefill, decode); fastv = L*(4nd^2+2n^2d+2ndm) MACs of the LM prefill, as in the paper's Table 1")


def at_least(least: int):
    """An argparse type: an integer >= `least`, else a usage error naming the value."""
    def parse(text: str) -> int:
        value = int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} must be at least {least}")
        return value
    parse.__name__ = f"integer >= {least}"
    return parse


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1]")
    return value


def print_results(results) -> None:
    from gprune.measures import Measure

    columns = (Measure.TFLOPS_EXACT, Measure.TFLOPS_FASTV, Measure.SAMPLES_PER_S, Measure.PREFILL_LATENCY_MS,
               Measure.DECODE_MS_PER_TOKEN)
    rows = []
    for result in results.values():
        metrics = list(result.metrics.items()) + [(m, None) for m in result.aggregation_errors]
        for i, (metric, value) in enumerate(metrics or [("(no metric)", None)]):
            first = i == 0
            rows.append([result.benchmark if first else "", metric, "error" if value is None else f"{value:.4f}",
                         *([f"{result.errors} ({Measure.ERROR_RATE.show(result.error_rate)})",
                            f"{result.visual_tokens_kept:.1f}/{result.visual_tokens_full:.1f}",
                            *(measure.show(getattr(result, measure)) for measure in columns)]
                           if first else [""] * (2 + len(columns)))])
    print(tabulate(rows, headers=["benchmark", "metric", "value", Measure.ERRORS.label, "visual kept/full",
                                  *(measure.label for measure in columns)], disable_numparse=True))
    some = next(iter(results.values()))
    t = some.throughput
    print(f"\nprune: {some.prune}")
    print(f"answers: {some.answers} (lmms-eval's CLI defaults: stop strings keep, 1024, reasoning tags strip)")
    print(f"throughput on {t['device']} ({t['dtype']}), batch size {t['batch_size']}, {t['decoding']}; "
          f"timed: {t['timed']}")
    print(f"prefill ms: {t['prefill_timed']}; decode ms/token: {t['decode_timed']}")
    print(FLOPS_NOTE)
    for result in results.values():
        if result.note:
            print(f"{result.benchmark}: {result.note}")
        for metric, error in result.aggregation_errors.items():
            print(f"{result.benchmark}: {metric} could not be aggregated: {error}")
        if result.truncated_images:
            print(f"{result.benchmark}: {result.truncated_images} sample(s) scored on a truncated image "
                  f"(flagged truncated_image in the records)")


def progress_bar(benchmark: str, total: int):
    """A bar on stderr for one benchmark's samples (samples/s and ETA as tqdm shows them); closed when full."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=benchmark, unit="sample", file=sys.stderr, dynamic_ncols=True, mininterval=1)

    def advance(samples: int) -> None:
        bar.update(samples)
        if bar.n >= total:
            bar.close()
    return advance


def cmd_eval(args) -> int:
    from gprune.benchmarks import check_data, resolve_benchmarks
    from gprune.evaluation import evaluate
    from gprune.loading import check_prune_fits, load_model, resolve_device

    prune = from_args(PruneConfig, args)  # bad parameters, names and data fail before the model loads
    check_used(prune, given_args(PruneConfig, args))
    decoding = from_args(Decoding, args)
    answers = from_args(AnswerRules, args)
    benchmarks = resolve_benchmarks(args.benchmarks)
    check_data(benchmarks, args.data_dir)
    check_prune_fits(prune, args.model)
    resolve_device(args.device)
    if args.log_samples:
        writable_folder(args.log_samples, "--log-samples")
    if args.json:
        writable_folder(os.path.dirname(os.path.abspath(args.json)), "--json")
    model, processor = load_model(args.model, prune=prune, device=args.device, dtype=args.dtype)
    results = evaluate(model, processor, benchmarks, limit=args.limit, batch_size=args.batch_size,
                       data_dir=args.data_dir, max_new_tokens=args.max_new_tokens, decoding=decoding,
                       answers=answers, progress=progress_bar)
    print_results(results)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({name: r.to_dict() for name, r in results.items()}, out, indent=2, default=str)
        print(f"\nwrote {args.json}")
    if args.log_samples:
        from gprune.lmms_samples import samples_file, write_samples

        for name, result in results.items():
            print(f"wrote {write_samples(samples_file(args.log_samples, name), result.records)}")
    return over_error_limit(results, args.max_error_rate)


def check_used(prune: PruneConfig, given: set[str]) -> None:
    """A method parameter given for a method that does not use it would be ignored: refused, as a sweep refuses it."""
    from gprune.methods import METHODS, declared_params, users

    own = {p.name for p in METHODS[prune.method].params}
    unused = sorted(name for name in given if name in declared_params() and name not in own)
    if unused:
        raise ValueError(f"{', '.join('--' + n for n in unused)}: a parameter of "
                         f"{', '.join(sorted({m for n in unused for m in users(n)}))}, which --method {prune.method} "
                         f"does not use; drop it, or choose a method that uses it (`gprune methods`)")


def over_error_limit(results, max_error_rate: float) -> int:
    """3 (the run failed) when a benchmark's error rate is over the limit, saying its first error; else 0."""
    failed = [r for r in results.values() if r.error_rate > max_error_rate]
    for result in failed:
        first = next(r for r in result.records if r.error)
        print(f"gprune: error: {result.benchmark}: {result.errors} of {result.samples} samples failed "
              f"({result.error_rate:.0%} > --max-error-rate {max_error_rate:.0%}); the first, row {first.index}: "
              f"{first.error}", file=sys.stderr)
    return 3 if failed else 0


def writable_folder(folder: str, option: str) -> None:
    """Make `folder` and prove a file can be written there, before any model work."""
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, ".gprune-write-test"), "w"):
            pass
        os.remove(os.path.join(folder, ".gprune-write-test"))
    except OSError as error:
        raise ValueError(f"{option} {folder}: cannot write there ({error.strerror}); give a writable folder") from None


def cmd_fixtures(args) -> int:
    from testbed.fixtures import GENERATORS, write_fixtures

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a file; give a folder (it is created if missing)")
    out = write_fixtures(args.out, n=args.n, seed=args.seed)
    print(f"wrote fixtures for {len(GENERATORS)} benchmarks ({args.n} samples each, seed {args.seed}) to {out}")
    print(f"use them with: gprune eval --benchmarks all --data-dir {out}")
    return 0


def cmd_train_tiny(args) -> int:
    from testbed.training.pipeline import run_training

    settings = TrainSettings(steps=args.steps, seed=args.seed, batch_size=args.batch_size,
                             vision_pretrain_steps=args.vision_steps,
                             generated_per_benchmark=args.generated_per_benchmark)
    run_training(args.out, settings, report=not args.no_report, easyvqa_limit=args.easyvqa_limit)
    print(f"load it with: gprune eval --model {args.out}   (or copy it to gprune/checkpoints/tiny for --model tiny)")
    return 0


def cmd_benchmarks(args) -> int:
    from gprune.benchmarks import NOTES, PRIMARY, TASKS, task_config

    rows = [[name, task, PRIMARY[name], task_config(name).get("dataset_path", "the easy-vqa pip package"),
             NOTES.get(name, "")] for name, task in TASKS.items()]
    print(tabulate(rows, headers=["benchmark", "lmms-eval task", "primary metric", "hub dataset", "scoring"],
                   maxcolwidths=[None, None, None, None, 60]))
    print("\ndata layout under --data-dir: README 'Benchmarks'; `gprune fixtures --out DIR` writes small ones")
    return 0


def cmd_methods(args) -> int:
    from gprune.methods import METHODS

    rows = [[m.name, m.stage.value.replace("_", " ") + (f", {m.needs.value.replace('_', ' ')}" if m.needs else ""),
             "\n".join(f"{p.name}={p.default!r}: {p.rule}" for p in m.params) or "-", m.summary]
            for m in METHODS.values()]
    print(tabulate(rows, headers=["method", "acts at", "parameters (default: valid values)", "what it does"],
                   maxcolwidths=[None, 24, 40, 60]))
    print("\nevery method gets the same budget: each image's base view and grid at --ratio, newlines kept "
          "(README 'Methods')")
    from gprune.families import FAMILIES, methods_of

    print("\nmodel families (README 'Models'):")
    for family in FAMILIES:
        usable = methods_of(family)
        print(f"  {family.name} (config.json model_type {family.model_type}, e.g. {family.example}): "
              + ("every method" if len(usable) == len(METHODS) else ", ".join(usable)))
    return 0


def register(commands) -> None:
    defaults = TrainSettings()
    formatter = argparse.ArgumentDefaultsHelpFormatter

    evaluate = add_command(commands, "eval", formatter_class=formatter)
    evaluate.add_argument("--model", default="tiny",
                          help="'tiny' (shipped), 'tiny-random', a local checkpoint dir, or a hub id in the cache")
    evaluate.add_argument("--benchmarks", default="easyvqa",
                          help="comma-separated names (see `gprune benchmarks`), or all")
    evaluate.add_argument("--data-dir", default=os.environ.get("GPRUNE_DATA_DIR"),
                          help="folder holding <benchmark>/ data in the hub layout ($GPRUNE_DATA_DIR)")
    evaluate.add_argument("--max-new-tokens", type=at_least(1), default=None,
                          help="cap on each task's max_new_tokens (None: the task's own)")
    evaluate.add_argument("--limit", type=at_least(1), default=None, help="samples per benchmark (None: all)")
    evaluate.add_argument("--batch-size", type=at_least(1), default=1, help="generation batch size")
    evaluate.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (None: cuda when present)")
    evaluate.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                          help="weights and activations (None: bfloat16 on cuda, float32 on cpu)")
    evaluate.add_argument("--max-error-rate", type=fraction, default=0.05,
                          help="a benchmark with more failed samples than this fails the run (exit 3), as a sweep "
                               "fails a trial")
    evaluate.add_argument("--json", default=None, help="also write results with per-sample records here")
    evaluate.add_argument("--log-samples", default=None, metavar="DIR",
                          help="also write each benchmark's records as lmms-eval's samples JSONL in DIR (what its "
                               "--log_samples writes; `python -m lmms_eval ... --baseline FILE` pairs with them)")
    add_dataclass_args(evaluate, PruneConfig, "pruning (gprune.PruneConfig)")
    add_dataclass_args(evaluate, Decoding, "decoding (gprune.decoding.Decoding)")
    add_dataclass_args(evaluate, AnswerRules, "answers (gprune.answers.AnswerRules; defaults are lmms-eval's)")
    evaluate.set_defaults(func=cmd_eval)

    fixtures = add_command(commands, "fixtures", formatter_class=formatter)
    fixtures.add_argument("--out", required=True, help="data directory to write <benchmark>/ folders into")
    fixtures.add_argument("--n", type=at_least(2), default=40, help="samples per benchmark")
    fixtures.add_argument("--seed", type=at_least(0), default=0, help="generator seed")
    fixtures.set_defaults(func=cmd_fixtures)

    train = add_command(commands, "train-tiny", formatter_class=formatter)
    train.add_argument("--out", default=".data/tiny-model", help="checkpoint folder to write")
    train.add_argument("--steps", type=at_least(1), default=defaults.steps, help="stage 2 steps (the whole model)")
    train.add_argument("--vision-steps", type=at_least(0), default=defaults.vision_pretrain_steps,
                       help="stage 1 steps: the vision tower alone on easy-VQA shape and colour (0 skips it)")
    train.add_argument("--seed", type=at_least(0), default=defaults.seed, help="seed of data order and init")
    train.add_argument("--batch-size", type=at_least(2), default=defaults.batch_size, help="examples per step")
    train.add_argument("--generated-per-benchmark", type=at_least(2), default=defaults.generated_per_benchmark,
                       help="fixture-style training items written per benchmark")
    train.add_argument("--no-report", action="store_true", help="skip the unpruned evaluation in the model card")
    train.add_argument("--easyvqa-limit", type=at_least(1), default=None,
                       help="easy-VQA test questions to report on (None: all 9,673)")
    train.set_defaults(func=cmd_train_tiny)

    listing = add_command(commands, "benchmarks")
    listing.set_defaults(func=cmd_benchmarks)
    methods = add_command(commands, "methods")
    methods.set_defaults(func=cmd_methods)
