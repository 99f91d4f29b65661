"""Random baseline (paper Table 1): a seeded, reproducible uniform choice of tokens."""

import torch


def score(features: torch.Tensor, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(features.shape[0], generator=generator).to(features.device)
