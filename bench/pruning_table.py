"""Accuracy of the trained tiny model (`--model tiny`) at 0/50/70/90% visual-token pruning for every
selection method, on easy-VQA's test split and the fixture benchmarks, with TFLOPs per sample and
samples/s; the question-prior row is the image-blind chance level (see the model card).

    .venv/bin/python bench/pruning_table.py            # the BENCHMARKS.md table
    .venv/bin/python bench/pruning_table.py --easyvqa 200 --fixtures 20   # a quick look

Fixtures: `gprune fixtures --seed 0 --n N`, kept out of training. No feature cache: every config
pays for its own vision tower, so samples/s is the cost of a sample.
"""

import argparse
import tempfile
import time

import torch

from gprune import PruneConfig, evaluate, load_model
from gprune.benchmarks import PRIMARY
from gprune.checkpoints import TINY
from gprune.methods import METHODS
from testbed.fixtures import GENERATORS, write_fixtures
from testbed.training.report import load_prior, prior_score

RATIOS = (0.5, 0.7, 0.9)
SHORT = {"mme_perception_score": "MME perc.", "pope_f1_score": "POPE F1", "gpt_eval_score": "MMB %",
         "relaxed_overall": "ChartQA", "anls": "DocVQA ANLS"}


def column(name: str) -> str:
    metric = PRIMARY[name]
    return SHORT.get(metric, f"{name} EM" if metric == "exact_match" else f"{name} {metric}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--easyvqa", type=int, default=1000, help="first N easy-VQA test questions")
    parser.add_argument("--fixtures", type=int, default=50, help="fixture samples per benchmark (seed 0)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(2)
    names = ["easyvqa", *GENERATORS]
    model, processor = load_model("tiny", device="cpu")
    prior = load_prior(TINY)
    rows = []
    with tempfile.TemporaryDirectory() as data_dir:
        write_fixtures(data_dir, n=args.fixtures, seed=0)
        limits = {name: args.easyvqa if name == "easyvqa" else None for name in names}
        rows.append(("question prior (no image)", None,
                     {n: prior_score(prior[n], n, data_dir, limits[n]) for n in names}, None))
        configs = [PruneConfig(ratio=0.0)] + [PruneConfig(method=m, ratio=r) for m in sorted(METHODS) for r in RATIOS]
        for config in configs:
            start = time.perf_counter()
            results = {n: evaluate(model, processor, [n], prune=config, limit=limits[n], batch_size=args.batch_size,
                                   data_dir=data_dir)[n] for n in names}
            label = "unpruned" if config.ratio == 0 else config.method
            rows.append((label, config.ratio, {n: r.metrics.get(PRIMARY[n]) for n, r in results.items()}, results))
            print(f"{label} {config.ratio}: {time.perf_counter() - start:.0f} s", flush=True)

    easy = "easy-VQA"
    print(f"\n{args.easyvqa} easy-VQA test questions, {args.fixtures} fixture samples per benchmark; greedy, batch "
          f"{args.batch_size}, CPU float32, 2 threads. TFLOPs: exact (2 x multiply-adds, whole model) per {easy} "
          f"sample; samples/s: processor + generate() over all benchmarks' samples; kept: visual tokens per "
          f"{easy} image (64x64)\n")
    header = ["method", "ratio", *(column(n) for n in names), "kept", "TFLOPs", "samples/s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, ratio, metrics, results in rows:
        cells = [label, "" if ratio is None else f"{ratio:.0%}"]
        cells += [f"{metrics[n]:.3f}" if metrics[n] is not None else "-" for n in names]
        if results:
            samples = sum(r.samples - r.errors for r in results.values())
            seconds = sum(r.model_seconds for r in results.values())
            cells += [f"{results['easyvqa'].visual_tokens_kept:.0f}", f"{results['easyvqa'].tflops_exact:.2e}",
                      f"{samples / seconds:.1f}"]
        else:
            cells += ["", "", ""]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
