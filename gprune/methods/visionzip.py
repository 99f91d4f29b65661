"""VisionZip (Yang et al., CVPR 2025): dominant tokens by the vision tower's [CLS] attention, plus
contextual tokens merged from the rest.

Of the `keep` tokens, a share `contextual` are contextual (VisionZip's 10 of 64 by default) and the
rest dominant: the tokens the [CLS] query attends to most (`guide`, from gprune/vision_attention.py).
The remaining tokens are grouped around evenly spaced targets among them (each joins its most similar
target, cosine) and each group is averaged into one token at its target's position.
"""

import torch
import torch.nn.functional as F

from .base import Method, Needs, Param, number_in

CONTEXTUAL = Param("contextual", 10 / 64, "VisionZip: share of the kept tokens that are merged contextual tokens",
                   "a number in [0, 1)", lambda v: number_in(0, 1, low_open=False)(v) and v < 1,
                   short="ctx")


def split(keep: int, contextual: float) -> tuple[int, int]:
    """(dominant, contextual) counts: at least one dominant token."""
    merged = min(round(keep * contextual), keep - 1)
    return keep - merged, merged


def reduce(features: torch.Tensor, keep: int, shape=None, guide: torch.Tensor = None, contextual: float = 10 / 64):
    dominant_count, merged_count = split(keep, contextual)
    order = torch.sort(guide.float(), descending=True, stable=True).indices
    dominant, rest = order[:dominant_count], order[dominant_count:].sort().values
    indices, tokens = [dominant], [features[dominant].float()]
    if merged_count:
        slots = torch.arange(merged_count, device=features.device) * (len(rest) // merged_count)
        targets = rest[slots]  # evenly spaced among the remaining tokens
        unit = F.normalize(features.float(), dim=-1)
        group = (unit[rest] @ unit[targets].T).argmax(dim=1)  # each remaining token's target
        group[slots] = torch.arange(merged_count, device=features.device)  # a target is its own group
        sums = torch.zeros(merged_count, features.shape[1], device=features.device).index_add_(
            0, group, features[rest].float())
        counts = torch.zeros(merged_count, device=features.device).index_add_(
            0, group, torch.ones(len(rest), device=features.device))
        indices.append(targets)
        tokens.append(sums / counts[:, None])
    indices, tokens = torch.cat(indices), torch.cat(tokens)
    order = indices.argsort()
    return indices[order], tokens[order].to(features.dtype)


def flops(n: int, d: int, keep: int, contextual: float = 10 / 64, **params) -> float:
    """The remaining tokens' similarity to the targets; the [CLS] row is counted with the vision tower's."""
    dominant, merged = split(keep, contextual)
    return 2 * (n - dominant) * merged * d


METHOD = Method("visionzip", "VisionZip: dominant tokens by the vision tower's [CLS] attention plus merged "
                "contextual tokens", reduce, (CONTEXTUAL,), flops, needs=Needs.VISION_ATTENTION)
