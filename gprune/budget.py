"""The one budget rule every method follows, whatever the family: per image, the base view and the grid's content
tokens are reduced apart, each to `ratio` of its tokens, and the grid's row-end newline tokens are always kept
(as the published implementation does). Called at the projector (gprune/model.py) and inside the language model
(gprune/lm_pruning.py)."""

import torch

from .config import PruneConfig
from .layout import ImageLayout, keep_count
from .methods import METHODS
from .methods.base import Stage
from .selection import reduce_tokens


def prunes_at(prune: PruneConfig, stage: Stage) -> bool:
    """Whether `prune` removes tokens at `stage`."""
    return prune.active and METHODS[prune.method].stage == stage


def reduce_image(features: torch.Tensor, layout: ImageLayout, prune: PruneConfig, guide=None,
                 finite_checked: bool = False):
    """One image's packed features [layout.full, d] after pruning: (indices, tokens). `indices` (ascending) are each
    output token's position in the unpruned image, for position ids. `finite_checked`: see reduce_tokens."""
    params = {**prune.method_params(), "finite_checked": finite_checked}
    base, base_tokens = reduce_tokens(features[: layout.base], keep_count(layout.base, prune.ratio), prune.method,
                                      layout.base_shape, None if guide is None else guide[: layout.base], **params)
    if not layout.rows:  # one view, no grid
        order = base.argsort()
        return base[order], base_tokens[order]
    grid_positions = layout.grid_positions(features.device)
    grid, grid_tokens = reduce_tokens(features[grid_positions], keep_count(len(grid_positions), prune.ratio),
                                      prune.method, (layout.rows, layout.cols),
                                      None if guide is None else guide[grid_positions], **params)
    newlines = layout.newline_positions(features.device)
    indices = torch.cat([base, grid_positions[grid], newlines])
    order = indices.argsort()
    tokens = torch.cat([base_tokens, grid_tokens.to(features.dtype), features[newlines]])
    return indices[order], tokens[order]
