"""Tiny-model prefill at pruning ratios 0/0.5/0.7/0.9 against the FLOPs-ideal speedup.

Times one prefill forward (vision tower, projector, token selection, LM prefill, logits for the
last position only, as generate() computes them) per sample, batch size 1, on the tiny model,
and compares the measured speedup over ratio 0 with the speedup that exact FLOPs predict.

    .venv/bin/python bench/prefill.py [--repeats 20] [--method gprune] [--hidden 64 --layers 2]
"""

import argparse
import statistics
import time

import easy_vqa
import torch
from PIL import Image

from gprune import PruneConfig, exact_flops, image_layout, set_prune
from gprune.generation import format_prompt
from testbed.tiny import build_model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--method", default="gprune")
    parser.add_argument("--hidden", type=int, default=64, help="LM width of the random tiny model")
    parser.add_argument("--layers", type=int, default=2, help="LM depth of the random tiny model")
    args = parser.parse_args()

    model, processor = build_model(hidden=args.hidden, layers=args.layers)
    set_prune(model, processor, PruneConfig())
    questions, _, image_ids = easy_vqa.get_test_questions()
    image = Image.open(easy_vqa.get_test_image_paths()[image_ids[0]]).convert("RGB")
    text = format_prompt(processor, questions[0])
    layout = image_layout(model.config, (image.height, image.width))
    print(f"tiny LLaVA-NeXT, LM hidden {args.hidden} x {args.layers} layers, device cpu, float32, batch 1, "
          f"{torch.get_num_threads()} threads, method "
          f"{args.method}; timed: one prefill forward (logits_to_keep=1), median of {args.repeats}")
    print("| ratio | visual tokens | prefill tokens | prefill ms | measured speedup | exact GFLOPs "
          "| FLOPs-ideal speedup |")
    print("|---|---|---|---|---|---|---|")
    baseline = None
    for ratio in (0.0, 0.5, 0.7, 0.9):
        prune = PruneConfig(ratio=ratio, method=args.method)
        set_prune(model, processor, prune)
        inputs = processor(images=image, text=text, return_tensors="pt")
        times = []
        with torch.inference_mode():
            model(**inputs, logits_to_keep=1)  # warm-up
            for _ in range(args.repeats):
                start = time.perf_counter()
                model(**inputs, logits_to_keep=1)
                times.append(1000 * (time.perf_counter() - start))
        ms = statistics.median(times)
        flops = exact_flops(model.config, inputs["input_ids"].shape[1], 0, [layout], prune).total
        baseline = baseline or (ms, flops)
        print(f"| {ratio:.1f} | {layout.kept(ratio)}/{layout.full} | {inputs['input_ids'].shape[1]} | {ms:.2f} | "
              f"{baseline[0] / ms:.2f}x | {flops / 1e9:.4f} | {baseline[1] / flops:.2f}x |")


if __name__ == "__main__":
    main()
