"""Reduction time of every method, one run: N visual tokens of width d (LLaVA-NeXT-8B's image at 672x672
gives ~2,880; its LM width is 4096), each method reducing them at 50/70/90%, against the no-op
baseline of slicing the first `keep` rows, measured in the same run.

    .venv/bin/python bench/methods.py [--n 2880] [--d 4096] [--repeats 3] [--device cpu|cuda] [--dtype float32]
"""

import argparse
import statistics
import time

import torch

from gprune.methods import METHODS
from gprune.selection import reduce_tokens


def median_ms(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2880)
    parser.add_argument("--d", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    rows = max(r for r in range(1, int(args.n ** 0.5) + 1) if args.n % r == 0)
    shape = (rows, args.n // rows)  # the most nearly square grid: 2880 = 48 x 60
    x = torch.randn(args.n, args.d, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    guide = torch.rand(args.n, generator=torch.Generator().manual_seed(1)).to(device)  # stands in for [CLS] attention
    print(f"{card}, torch {torch.__version__}, {args.dtype}, N={args.n} d={args.d}, grid {shape}, "
          f"median of {args.repeats} after a warm-up; timed: reduce_tokens() (validation + method)")
    ratios = (0.5, 0.7, 0.9)
    print("| method | " + " | ".join(f"{int(r * 100)}% (ms)" for r in ratios) + " |")
    print("|---|" + "---|" * len(ratios))
    keeps = [round(args.n * (1 - r)) for r in ratios]
    slicing = [median_ms(lambda k=k: x[:k].clone(), args.repeats, device) for k in keeps]
    print("| (baseline: slice first keep rows) | " + " | ".join(f"{t:.2f}" for t in slicing) + " |")
    for name in METHODS:  # fastv's own cost is its attention row inside the LM: here only its top-k
        times = [median_ms(lambda k=k, m=name: reduce_tokens(x, k, m, shape, guide), args.repeats, device)
                 for k in keeps]
        print(f"| {name} | " + " | ".join(f"{t:.1f}" for t in times) + " |")


if __name__ == "__main__":
    main()
