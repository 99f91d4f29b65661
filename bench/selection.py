"""Token selection: G-Prune's t vector-matrix products against a dense matrix-power formulation.

Both share the similarity graph (the N^2 d cosine matrix and the masked row softmax); they differ
only in Eq. 3: S0 @ A^t as t products of a vector with A (ours, t N^2) or as a dense A^t
(torch.linalg.matrix_power: ~log2(t) N^3 products). Checks both select the same tokens.

    .venv/bin/python bench/selection.py [--repeats 5]
"""

import argparse
import statistics
import time

import torch

from gprune import select_tokens
from gprune.methods.gprune import similarity_graph


def dense_matrix_power_select(x, keep, threshold=0.5, iterations=5, temperature=0.03):
    x = x.float()
    transition, edges = similarity_graph(x, threshold, temperature)
    scores = x.norm(dim=-1) @ torch.linalg.matrix_power(transition, iterations) / edges.sum(dim=-1)
    return torch.sort(scores, descending=True, stable=True).indices[:keep].sort().values


def median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"device cpu, torch {torch.__version__}, {torch.get_num_threads()} threads, float32, "
          f"s=0.5 t=5 temperature=0.03, keep 30% (ratio 0.7), median of {args.repeats}")
    print("| N | d | ours (ms) | dense matrix power (ms) | speedup | same tokens |")
    print("|---|---|---|---|---|---|")
    for n in (576, 2304, 2880):
        for d in (1024, 4096):
            x = torch.randn(n, d, generator=torch.Generator().manual_seed(n + d))
            keep = round(0.3 * n)
            ours = median_ms(lambda x=x, keep=keep: select_tokens(x, keep), args.repeats)
            dense = median_ms(lambda x=x, keep=keep: dense_matrix_power_select(x, keep), args.repeats)
            same = torch.equal(select_tokens(x, keep), dense_matrix_power_select(x, keep))
            print(f"| {n} | {d} | {ours:.1f} | {dense:.1f} | {dense / ours:.2f}x | {same} |")


if __name__ == "__main__":
    main()
