"""Graph-only ablation (paper Table 2, "Graph" without "l2-Norm"): G-Prune with a uniform initial score."""

import torch

from .base import Method, from_scores
from .gprune import ITERATIONS, TEMPERATURE, THRESHOLD, graph_flops, graph_scores


def score(features: torch.Tensor, threshold: float = 0.5, iterations: int = 5, temperature: float = 0.03):
    return graph_scores(features, lambda x: torch.ones(x.shape[0], dtype=x.dtype, device=x.device),
                        threshold, iterations, temperature)


METHOD = Method("graph", "Table-2 ablation: G-Prune's propagation from a uniform initial score",
                from_scores(score), (THRESHOLD, ITERATIONS, TEMPERATURE), graph_flops)
