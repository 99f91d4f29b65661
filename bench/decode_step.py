"""One decode step of the project's pruned classes against transformers' own on the same checkpoint: what the
project adds per generated token, known before the card (issue 32).

The 8B token geometry (testbed/geometry_8b.py: random weights, bf16) is built twice from one seed: transformers'
LlavaNextForConditionalGeneration as it ships, and the same weights under set_prune (the project's classes), here at
ratio 0 (every visual token: the same prompt as transformers') and G-Prune 90%. Each generates from the same image
and question through model.generate() itself (no evaluation runner around it), static KV cache, decode step
compiled (Decoding(cache="static", compile="on"): CUDA graphs on a GPU), batch B, every answer forced to
--new-tokens tokens. Timed: the prefill (generate() start to the end of the first language-model forward,
synchronised) and a decode step (from there to the end of generate(), over the tokens after the first); medians of
--repeats after two warm-up calls. Also counted once warm, per configuration: Python function calls per decode step
(cProfile's count over a generate() of --new-tokens tokens less one of 2, over the steps between: noise-free, so it
shows on CPU what a class adds per step), dynamo graph breaks, graphs compiled again (recompiles) and CUDA graphs
skipped, the per-step costs a compiled step should not have.

    python bench/decode_step.py [--batch 1] [--new-tokens 33] [--repeats 5] [--out decode_step.json]   # on a GPU
    python bench/decode_step.py --smoke                                    # CPU: the narrow model, same geometry
"""

import argparse
import cProfile
import json
import pstats
import statistics
import time

import torch
import transformers

from gprune import PruneConfig, set_prune
from gprune.decoding import Decoding
from gprune.generation import prefill_clock
from gprune.transformers_api import compiler_counts
from testbed.geometry_8b import FULL, NARROW, build, prepare_rows

COMPILED = Decoding(cache="static", compile="on")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def generate_once(model, inputs, new_tokens: int) -> tuple[float, float]:
    """(prefill seconds, seconds per decode step) of one generate()."""
    kwargs = COMPILED.generate_kwargs(model.device, inputs["input_ids"].shape[1], new_tokens)
    synchronize(model.device)
    with prefill_clock(model) as marks:
        start = time.perf_counter()
        output = model.generate(**inputs, max_new_tokens=new_tokens, **kwargs)
        synchronize(model.device)
        end = time.perf_counter()
    generated = output.shape[1] - inputs["input_ids"].shape[1]
    if generated != new_tokens:
        raise RuntimeError(f"generated {generated} tokens, not the {new_tokens} forced")
    return marks["prefill_end"] - start, (end - marks["prefill_end"]) / (new_tokens - 1)


def python_calls(model, inputs, new_tokens: int) -> int:
    """Python function calls in one generate() of `new_tokens` tokens."""
    profiler = cProfile.Profile()
    profiler.enable()
    generate_once(model, inputs, new_tokens)
    profiler.disable()
    return sum(calls for _, calls, *_ in pstats.Stats(profiler).stats.values())


def measure(model, processor, args) -> dict:
    """Warm-up twice (compiles), then --repeats timed calls; the compiler's counters over the timed ones."""
    prepared = prepare_rows(processor, args.batch, args.new_tokens, device=model.device)
    inputs = prepared.inputs.to(model.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    for _ in range(2):
        generate_once(model, inputs, args.new_tokens)
    compiler_counts(reset=True)
    timings = [generate_once(model, inputs, args.new_tokens) for _ in range(args.repeats)]
    compiler = compiler_counts()
    calls = (python_calls(model, inputs, args.new_tokens) - python_calls(model, inputs, 2)) / (args.new_tokens - 2)
    prompt = inputs["input_ids"].shape[1]
    return {
        "prompt_tokens": prompt,
        "cache_length": COMPILED.generate_kwargs(model.device, prompt, args.new_tokens)["max_cache_len"],
        "prefill_ms": 1000 * statistics.median(t[0] for t in timings),
        "decode_step_ms": 1000 * statistics.median(t[1] for t in timings),
        "decode_step_ms_all": [1000 * t[1] for t in timings],
        "python_calls_per_step": calls,
        **compiler,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, a narrow model of the same token geometry")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=33)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.9])
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and not args.smoke
    device = torch.device("cuda" if cuda else "cpu")
    sizes = FULL if cuda else NARROW
    card = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"

    rows = []
    plain, plain_processor = build(sizes, device, torch.bfloat16, pruned=False)
    rows.append({"classes": "transformers' own", "config": "unpruned", **measure(plain, plain_processor, args)})
    del plain
    model, processor = build(sizes, device, torch.bfloat16)
    for ratio in args.ratios:
        set_prune(model, processor, PruneConfig(method="gprune", ratio=ratio))
        rows.append({"classes": "project's (set_prune)", "config": f"gprune {ratio:.0%}",
                     **measure(model, processor, args)})

    print(f"{'llama3-llava-next-8b geometry' if cuda else 'NARROW smoke model, 8b token geometry'}, random weights, "
          f"bfloat16, SDPA, {card}, torch {torch.__version__}, transformers {transformers.__version__}; batch "
          f"{args.batch}, {args.new_tokens} new tokens forced, static KV cache, decode step compiled; medians of "
          f"{args.repeats} after 2 warm-up calls; a decode step = end of the prefill to the end of generate(), over "
          f"{args.new_tokens - 1} steps\n")
    base = rows[0]["decode_step_ms"]
    print("| classes | config | prompt tokens | cache length | prefill ms | decode step ms | vs transformers' own "
          "| Python calls per step | graph breaks | recompiles | CUDA graphs skipped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['classes']} | {row['config']} | {row['prompt_tokens']} | {row['cache_length']} | "
              f"{row['prefill_ms']:.1f} | {row['decode_step_ms']:.2f} | {row['decode_step_ms'] - base:+.2f} ms | "
              f"{row['python_calls_per_step']:.1f} | {row['graph_breaks']} | {row['recompiles']} | "
              f"{row['cudagraph_skips']} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"card": card, "torch": torch.__version__, "transformers": transformers.__version__,
                       "batch": args.batch, "new_tokens": args.new_tokens, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
