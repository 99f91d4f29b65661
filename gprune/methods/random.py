"""Random baseline (paper Table 1): a seeded, reproducible uniform choice of tokens."""

import torch

from .base import Method, Param, from_scores, integer_in

MAX_SEED = 2**63 - 1  # torch.Generator's seed is a 64-bit integer; a larger one fails every sample
SEED = Param("seed", 0, "seed of the random choice", "an integer in [0, 2**63 - 1]", integer_in(0, MAX_SEED))


def score(features: torch.Tensor, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(features.shape[0], generator=generator).to(features.device)


METHOD = Method("random", "Table-1 baseline: a seeded uniform choice of tokens", from_scores(score), (SEED,))
