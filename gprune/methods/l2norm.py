"""L2-norm baseline (paper Table 2 and Fig. 4): keep the tokens with the largest feature norm."""

import torch

from .base import Method, from_scores


def score(features: torch.Tensor) -> torch.Tensor:
    return features.float().norm(dim=-1)


METHOD = Method("l2norm", "Table-2 ablation: the tokens with the largest feature norm, no graph", from_scores(score))
