"""L2-norm baseline (paper Table 2 and Fig. 4): keep the tokens with the largest feature norm."""

import torch


def score(features: torch.Tensor) -> torch.Tensor:
    return features.float().norm(dim=-1)
