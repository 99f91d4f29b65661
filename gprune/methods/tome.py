"""ToMe (Bolya et al., ICLR 2023) applied once to the projected visual tokens: bipartite soft matching.

Each round splits the tokens alternately into sets A and B, links every A token to its most similar
B token (cosine), and merges the most similar links, A into B, by size-weighted average (a token
that stands for k tokens weighs k). Rounds repeat until exactly `keep` tokens remain; a round merges
at most half of A, so near-duplicates merge before dissimilar tokens are forced together. A merged
token keeps its B token's position. Everything inside a round is one batched tensor operation.
"""

import torch
import torch.nn.functional as F

from .base import Method


def _round(tokens, sizes, positions, merges: int):
    a, b = torch.arange(0, len(tokens), 2, device=tokens.device), torch.arange(1, len(tokens), 2, device=tokens.device)
    unit = F.normalize(tokens, dim=-1)
    best, partner = (unit[a] @ unit[b].T).max(dim=1)  # each A token's most similar B token
    order = torch.sort(best, descending=True, stable=True).indices
    merged, kept_a = order[:merges], order[merges:]
    total = tokens[b] * sizes[b, None]
    total.index_add_(0, partner[merged], tokens[a[merged]] * sizes[a[merged], None])
    b_sizes = sizes[b].index_add(0, partner[merged], sizes[a[merged]])
    tokens = torch.cat([tokens[a[kept_a]], total / b_sizes[:, None]])
    sizes = torch.cat([sizes[a[kept_a]], b_sizes])
    positions = torch.cat([positions[a[kept_a]], positions[b]])
    order = positions.argsort()  # back to the original order, so A and B alternate spatially again
    return tokens[order], sizes[order], positions[order]


def reduce(features: torch.Tensor, keep: int, shape=None):
    tokens = features.float()
    sizes = torch.ones(len(tokens), device=features.device)
    positions = torch.arange(len(tokens), device=features.device)
    while len(tokens) > keep:
        a_count = (len(tokens) + 1) // 2
        merges = min(len(tokens) - keep, max(1, a_count // 2))
        tokens, sizes, positions = _round(tokens, sizes, positions, merges)
    return positions, tokens.to(features.dtype)


def flops(n: int, d: int, keep: int, **params) -> float:
    """Each round's A x B similarity (n/2 x n/2 x d), summed over rounds (the merge is element-wise)."""
    total = 0.0
    while n > keep:
        total += 2 * (n // 2) * ((n + 1) // 2) * d
        n -= min(n - keep, max(1, (n + 1) // 2 // 2))
    return total


METHOD = Method("tome", "ToMe: bipartite soft matching, size-weighted merging until the budget", reduce, flops=flops)
