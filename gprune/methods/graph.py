"""Graph-only ablation (paper Table 2, "Graph" without "l2-Norm"): G-Prune with a uniform initial score."""

import torch

from .gprune import propagate, similarity_graph


def score(
    features: torch.Tensor,
    threshold: float = 0.5,
    iterations: int = 5,
    temperature: float = 0.03,
) -> torch.Tensor:
    x = features.float()
    transition, edges = similarity_graph(x, threshold, temperature)
    uniform = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    return propagate(uniform, transition, edges, iterations)
