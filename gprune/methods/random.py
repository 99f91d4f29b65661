"""Random baseline (paper Table 1): a seeded, reproducible uniform choice of tokens."""

import torch

from .base import Method, Param, from_scores, integer_at_least

SEED = Param("seed", 0, "seed of the random choice", "an integer >= 0", integer_at_least(0))


def score(features: torch.Tensor, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(features.shape[0], generator=generator).to(features.device)


METHOD = Method("random", "Table-1 baseline: a seeded uniform choice of tokens", from_scores(score), (SEED,))
