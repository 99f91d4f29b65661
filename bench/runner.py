"""Our evaluation runner against lmms-eval's own evaluation loop, same task, same model, same run.

Both drive the same pruned tiny LLaVA-NeXT (the `gprune_llava_next` lmms-eval model object) over
the easy-VQA test split (first --limit questions), G-Prune at 70%, batch sizes 1 and 8, CPU float32.
Wall time covers everything each loop does (task loading, prompts, generation, scoring,
aggregation); model time is the time spent inside generation calls (processor + generate()).

    .venv/bin/python bench/runner.py [--limit 64]
"""

import argparse
import time

import torch
from loguru import logger

from gprune.evaluation import evaluate
from gprune.lmms_model import GPruneModel
from gprune.tasks import TASKS_DIR


def timed_generate_until(lm):
    """Wrap lm.generate_until to add the seconds spent inside it to lm.model_seconds."""
    inner = lm.generate_until

    def generate_until(requests):
        start = time.perf_counter()
        try:
            return inner(requests)
        finally:
            lm.model_seconds += time.perf_counter() - start

    lm.generate_until = generate_until
    lm.model_seconds = 0.0


def run_lmms_eval(lm, limit, batch_size, task_manager):
    from lmms_eval.evaluator import simple_evaluate

    lm.batch_size, lm.model_seconds = batch_size, 0.0
    start = time.perf_counter()
    out = simple_evaluate(model=lm, tasks=["easyvqa"], limit=limit, batch_size=batch_size, task_manager=task_manager)
    wall = time.perf_counter() - start
    return wall, lm.model_seconds, out["results"]["easyvqa"]["exact_match,none"]


def run_ours(lm, limit, batch_size, task_manager=None):
    start = time.perf_counter()
    result = evaluate(lm.model, lm.processor, ["easyvqa"], limit=limit, batch_size=batch_size)["easyvqa"]
    wall = time.perf_counter() - start
    return wall, result.samples / result.samples_per_s, result.metrics["exact_match"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=64)
    args = parser.parse_args()
    logger.disable("lmms_eval")
    lm = GPruneModel(pretrained="tiny", ratio=0.7, device="cpu")
    timed_generate_until(lm)
    run_ours(lm, 8, 8)  # warm-up: dataset caches, kernels
    from lmms_eval.tasks import TaskManager

    start = time.perf_counter()
    task_manager = TaskManager(include_path=str(TASKS_DIR))  # indexes lmms-eval's ~340 task folders
    index_seconds = time.perf_counter() - start
    print(f"tiny LLaVA-NeXT, G-Prune ratio 0.7, cpu float32, {torch.get_num_threads()} threads, "
          f"easy-VQA test first {args.limit} questions; lmms-eval's TaskManager index took {index_seconds:.1f} s "
          "once, before and outside the timings below")
    print("| loop | batch | wall s | samples/s (wall) | model s | overhead outside the model | exact_match |")
    print("|---|---|---|---|---|---|---|")
    for batch_size in (1, 8):
        for name, run in (("lmms-eval simple_evaluate", run_lmms_eval), ("gprune.evaluate", run_ours)):
            wall, model_seconds, accuracy = run(lm, args.limit, batch_size, task_manager)
            print(f"| {name} | {batch_size} | {wall:.2f} | {args.limit / wall:.1f} | {model_seconds:.2f} | "
                  f"{100 * (wall - model_seconds) / wall:.0f}% | {accuracy:.3f} |")


if __name__ == "__main__":
    main()
