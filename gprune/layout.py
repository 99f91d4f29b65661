"""Where each visual token of one image sits, and how many survive a pruning ratio: the shape every family's packing
takes (gprune/families/: each family computes its images' layouts). One image is a base view of `base` tokens, then
optionally a grid of `rows` x (`cols` + 1) tokens whose last of each row is a newline token. The model and the
processor both count tokens with these, so the number of image placeholders in the prompt always equals the number of
visual tokens the model keeps.
"""

import math
from dataclasses import dataclass

import torch


def keep_count(n: int, ratio: float) -> int:
    """Tokens kept out of `n` when a fraction `ratio` is removed (at least one of a non-empty set, all when
    ratio=0)."""
    return n if ratio == 0 or n == 0 else max(1, round(n * (1 - ratio)))


@dataclass(frozen=True)
class ImageLayout:
    base: int  # base-view tokens
    rows: int  # grid rows after unpadding; each ends with one newline token
    cols: int  # grid columns after unpadding
    crops: int = 1  # vision-tower passes: the base view plus each high-resolution crop
    base_grid: tuple[int, int] | None = None  # the base view's (rows, cols) when not a square
    # how the picture becomes the base view, for drawing kept-token maps: "squash" (resized to a square), "crop"
    # (shortest side resized, centre cropped), "whole" (its own aspect)
    fit: str = "squash"

    @property
    def base_shape(self) -> tuple[int, int] | None:
        """The base view's 2-D token grid, or None when its tokens have no place on one (a CLS token)."""
        if self.base_grid:
            return self.base_grid
        side = math.isqrt(self.base)
        return (side, side) if side * side == self.base else None

    @property
    def full(self) -> int:
        return self.base + self.rows * (self.cols + 1)

    def kept(self, ratio: float) -> int:
        return keep_count(self.base, ratio) + keep_count(self.rows * self.cols, ratio) + self.rows

    # Built on `device` itself: a copy from host memory would wait for the device's queue (a host sync).
    def grid_positions(self, device=None) -> torch.Tensor:
        """Indices (within the packed image) of the grid's content tokens, newlines excluded."""
        row_starts = self.base + torch.arange(self.rows, device=device) * (self.cols + 1)
        return (row_starts[:, None] + torch.arange(self.cols, device=device)).flatten()

    def newline_positions(self, device=None) -> torch.Tensor:
        return self.base + torch.arange(1, self.rows + 1, device=device) * (self.cols + 1) - 1

