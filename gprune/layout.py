"""Where each visual token of one image sits, and how many survive a pruning ratio.

LLaVA-NeXT: transformers packs one image as [base view: `base` tokens] + [high-resolution grid, unpadded:
`rows` x (`cols` + 1) tokens, the last of each row being the learned `image_newline`]. LLaVA-1.5: the base
view alone (one 336 px view, 24 x 24 = 576 tokens; no grid, no newlines). The model and the processor both
count tokens with these functions, so the number of image placeholders in the prompt always equals the number
of visual tokens the model keeps. Qwen2.5-VL: one view, the merged grid at the image's own resolution and aspect
(gprune/qwen25vl.py builds its layouts from the processor's image_grid_thw).
"""

import math
from dataclasses import dataclass

import torch
from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape, unpad_image


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
    base_grid: tuple[int, int] | None = None  # the base view's (rows, cols) when not a square (Qwen2.5-VL)
    # how the picture becomes the base view: "squash" (resized to a square: LLaVA-NeXT), "crop" (shortest side
    # resized, centre cropped: LLaVA-1.5), "whole" (its own aspect: Qwen2.5-VL); for drawing kept-token maps
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


def image_layout(config, image_size) -> ImageLayout:
    """Layout of one image of original (height, width) `image_size` under a LLaVA-NeXT or LLaVA-1.5 config."""
    vision = config.vision_config
    side = vision.image_size // vision.patch_size
    base = side * side + (1 if config.vision_feature_select_strategy == "full" else 0)
    if config.model_type == "llava":  # every image is resized to one square view
        return ImageLayout(base=base, rows=0, cols=0, fit="crop")
    grid_h, grid_w = get_anyres_image_grid_shape(image_size, config.image_grid_pinpoints, vision.image_size)
    # transformers' own unpadding, applied to an empty tensor, gives the grid shape it will produce.
    _, rows, cols = unpad_image(torch.empty(0, grid_h * side, grid_w * side), image_size).shape
    return ImageLayout(base=base, rows=rows, cols=cols, crops=grid_h * grid_w + 1)
