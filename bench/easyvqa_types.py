"""Where the trained tiny model (`--model tiny`) is right and wrong on easy-VQA: exact match on the
whole test split by question type (colour, shape, yes/no), yes/no split by subject (a colour or a
shape) and negation ("is there not a ..."), next to the question prior on the same questions.

    .venv/bin/python bench/easyvqa_types.py            # the BENCHMARKS.md breakdown, ~2 min
    .venv/bin/python bench/easyvqa_types.py --ratio 0.9 --method gprune   # the same, pruned
"""

import argparse
import re
from collections import defaultdict

import easy_vqa
import torch
from PIL import Image

from gprune import PruneConfig, load_model, set_prune
from gprune.benchmarks import load_task
from gprune.checkpoints import TINY
from gprune.generation import generate_batch
from testbed.training.report import load_prior
from testbed.training.vision_pretrain import SHAPES


def question_type(question: str, answer: str) -> str:
    if answer not in ("yes", "no"):
        return "shape" if answer in SHAPES else "colour"
    subject = "shape" if re.search("|".join(SHAPES), question) else "colour"
    return f"yes/no on a {subject}, {'negated' if ' not ' in question else 'plain'}, answer {answer}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="gprune")
    parser.add_argument("--ratio", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, processor = load_model("tiny", device="cpu")
    set_prune(model, processor, PruneConfig(method=args.method, ratio=args.ratio))
    prior = load_prior(TINY)["easyvqa"]
    task = load_task("easyvqa")  # its prompt, as evaluation and training phrase it
    questions, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    images = {i: Image.open(paths[i]).convert("RGB") for i in set(image_ids)}
    counts = defaultdict(lambda: [0, 0, 0])  # model right, prior right, questions
    for start in range(0, len(questions), args.batch_size):
        rows = range(start, min(start + args.batch_size, len(questions)))
        texts = [task.doc_to_text({"question": questions[i]}) for i in rows]
        predictions = generate_batch(model, processor, [[images[image_ids[i]]] for i in rows], texts,
                                     {"max_new_tokens": 4}).texts
        for i, text, prediction in zip(rows, texts, predictions):
            guess = prior.get(text, prior[""])
            for key in ("all", "yes/no" if answers[i] in ("yes", "no") else "open",
                        question_type(questions[i], answers[i])):
                counts[key][0] += prediction.strip().lower() == answers[i]
                counts[key][1] += guess == answers[i]
                counts[key][2] += 1
    print(f"tiny checkpoint, easy-VQA test (all {len(questions):,} questions), method {args.method}, "
          f"ratio {args.ratio}; greedy, batch {args.batch_size}, CPU float32; exact match")
    print("\n| questions | count | model | question prior |\n|---|---:|---:|---:|")
    for key in ["all", "open", "colour", "shape", "yes/no"] + sorted(k for k in counts if k.startswith("yes/no on")):
        right, prior_right, total = counts[key]
        print(f"| {key} | {total} | {right / total:.3f} | {prior_right / total:.3f} |")


if __name__ == "__main__":
    main()
