"""DivPrune (Alvar et al., CVPR 2025): keep the most diverse tokens, a max-min diversity problem solved
greedily (farthest point in cosine distance). The first token is the one farthest from its nearest
neighbour; each next one maximises its distance to the nearest token already kept. Parameter-free."""

import torch
import torch.nn.functional as F

from .base import Method


def reduce(features: torch.Tensor, keep: int, shape=None):
    unit = F.normalize(features.float(), dim=-1)
    distance = 1 - unit @ unit.T  # [N, N] cosine distance
    n = features.shape[0]
    chosen = torch.empty(keep, dtype=torch.long, device=features.device)
    # the first: the largest distance to its nearest neighbour (itself excluded)
    nearest = distance.masked_fill(torch.eye(n, dtype=torch.bool, device=features.device), float("inf")).amin(dim=1)
    chosen[0] = torch.argmax(nearest) if n > 1 else 0
    to_kept = distance[chosen[0]].clone()  # each token's distance to the nearest kept token
    for i in range(1, keep):
        to_kept[chosen[i - 1]] = -1  # never pick a kept token again (duplicates would tie at 0)
        chosen[i] = torch.argmax(to_kept)
        to_kept = torch.minimum(to_kept, distance[chosen[i]])
    indices = chosen.sort().values
    return indices, features[indices]


def flops(n: int, d: int, keep: int, **params) -> float:
    """The distance matrix (N x N x d); the greedy updates are element-wise (not counted)."""
    return 2 * n * n * d


METHOD = Method("divprune", "DivPrune: greedy max-min diversity (farthest point, cosine distance)", reduce,
                flops=flops)
