"""End-to-end pruning speed on a GPU at the paper's model size: llama3-llava-next-8b's geometry with random
weights in bfloat16 (no download), one 672x672 image (2,928 packed visual tokens) and a short prompt.

For gprune / random / l2norm at 0 / 50 / 70 / 90% removed, batch 1 and 8, on the dynamic-cache path and
the fast path (static KV cache, decode step compiled on CUDA), in one run: processor ms (prompts, image
processor on the model's device, inputs on the device), prefill ms (generate() start to the end of the first LM
forward: vision tower, projector, selection, prefill), decode ms per step, and
samples/s end to end (processor + generate(), `--new-tokens` tokens forced), each the median of
`--repeats` after a warm-up that compiles; speedup over the unpruned run of the same path and batch; the
FLOPs-ideal speedup (exact FLOPs, unpruned / pruned); and whether the fast path's greedy tokens equal the
dynamic path's. Prints a Markdown table naming the card, torch and transformers.

    python bench/gpu.py [--out results.json]            # on an H100/H200, ~5 min
    python bench/gpu.py --smoke                         # CPU: a narrow model of the same token geometry
"""

import argparse
import json
import statistics
import time

import torch
import transformers

from gprune import PruneConfig, exact_flops, image_layout, set_prune
from gprune.decoding import Decoding
from gprune.generation import image_device
from testbed.geometry_8b import bench_setup, generate_rows, random_image


def run_config(model, processor, image, batch, new_tokens, decoding, repeats):
    def run():
        return generate_rows(model, processor, batch, new_tokens, decoding, image)

    out = run()
    warm = time.perf_counter()
    run()  # compiled
    runs = [run() for _ in range(repeats)]
    return {
        "processor_ms": 1000 * statistics.median(r.processor_seconds for r in runs),
        "prefill_ms": 1000 * statistics.median(r.prefill_seconds for r in runs),
        "decode_ms_per_token": 1000 * statistics.median(r.decode_seconds / max(1, r.decode_steps) for r in runs),
        "samples_per_s": batch / statistics.median(r.seconds for r in runs),
        "second_warmup_s": time.perf_counter() - warm, "texts": out.texts,
        "prefill_tokens": out.stats[0]["prefill_tokens"],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="CPU, a narrow model of the same token geometry")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=9)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--methods", default="gprune,random,l2norm")
    parser.add_argument("--ratios", default="0,0.5,0.7,0.9")
    parser.add_argument("--out", default=None, help="also write every number as JSON here")
    args = parser.parse_args()

    setup = bench_setup(args.smoke)
    model, processor, device, card = setup.model, setup.processor, setup.device, setup.card
    image = random_image()
    layout = image_layout(model.config, (672, 672))
    paths = {"dynamic": Decoding(cache="dynamic"), "fast": setup.fast}
    batches = [int(b) for b in args.batches.split(",")]
    methods, ratios = args.methods.split(","), [float(r) for r in args.ratios.split(",")]
    if ratios[0] != 0:
        parser.error("--ratios must start with 0: each batch's unpruned run is the baseline of its speedups")
    started = time.perf_counter()
    print(f"{setup.workload}, random weights, bfloat16, SDPA, {card}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}; one 672x672 image = {layout.full} visual tokens; {args.new_tokens} new "
          f"tokens forced; medians of {args.repeats}; fast path = {paths['fast'].describe(device)}; images "
          f"processed by {type(processor.image_processor).__name__} on "
          f"{image_device(processor, device).get('device', 'the host')}")
    print("| path | batch | method | ratio | visual kept | processor ms | prefill ms | decode ms/token | samples/s "
          "| speedup | FLOPs-ideal speedup | answers = dynamic |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for batch in batches:
        for method in methods:
            for ratio in ratios:
                if ratio == 0 and method != methods[0]:
                    continue  # unpruned is the same run for every method
                prune = PruneConfig(method=method, ratio=ratio)
                set_prune(model, processor, prune)
                result = {name: run_config(model, processor, image, batch, args.new_tokens, decoding, args.repeats)
                          for name, decoding in paths.items()}
                flops = exact_flops(model.config, result["fast"]["prefill_tokens"], args.new_tokens, [layout],
                                    prune).total
                for name in paths:
                    row = {"path": name, "batch": batch, "method": method if ratio else "none", "ratio": ratio,
                           "visual_kept": layout.kept(ratio), "tflops_exact": flops / 1e12,
                           "same_answers": result[name]["texts"] == result["dynamic"]["texts"],
                           **{k: v for k, v in result[name].items() if k != "texts"}}
                    # printed as it comes (a run cut short keeps its rows): the unpruned row of a batch comes first
                    base = row if ratio == 0 else next(r for r in rows if r["path"] == name and r["batch"] == batch
                                                       and r["ratio"] == 0)
                    row["speedup"] = row["samples_per_s"] / base["samples_per_s"]
                    row["flops_ideal_speedup"] = base["tflops_exact"] / row["tflops_exact"]
                    rows.append(row)
                    print(f"| {name} | {batch} | {row['method']} | {ratio:.0%} | {row['visual_kept']} "
                          f"| {row['processor_ms']:.1f} | {row['prefill_ms']:.1f} | {row['decode_ms_per_token']:.2f} "
                          f"| {row['samples_per_s']:.2f} "
                          f"| {row['speedup']:.2f}x | {row['flops_ideal_speedup']:.2f}x | {row['same_answers']} |",
                          flush=True)
                if args.out:
                    with open(args.out, "w") as out:
                        json.dump({"card": card, "torch": torch.__version__, "transformers": transformers.__version__,
                                   "rows": rows}, out, indent=2)
    print(f"\n{time.perf_counter() - started:.0f} s in all")

if __name__ == "__main__":
    main()
