"""LLaVA-1.5 (`llava-hf/llava-1.5-*-hf`): one 336 px view of 24 x 24 = 576 visual tokens per image, no grid, no
newline tokens. The same pruning as LLaVA-NeXT (gprune/model.py) on that one view: every method keeps the same
budget of it, kept tokens keep their original 1-D positions (or are renumbered: positions="compact"), and the
processor emits one placeholder per kept token."""

import torch
from transformers import LlavaForConditionalGeneration, LlavaProcessor
from transformers.models.llava.modeling_llava import LlavaModel

from .config import PruneConfig
from .layout import ImageLayout, image_layout
from .methods.base import Stage
from .model import PruningGeneration, PruningModel, prunes_at


class PrunedLlavaModel(PruningModel, LlavaModel):
    PIXEL_DIMS = 4  # [images, 3, H, W]

    def layouts_of(self, pixel_values, image_sizes) -> list[ImageLayout]:
        return [image_layout(self.config, None)] * len(pixel_values)

    def _pack_attention(self, attention, pixel_values, image_sizes, strategy, dtype) -> list[torch.Tensor]:
        """One view per image: its row of [CLS] attention is already in the features' order."""
        return list(attention[..., None].to(dtype))


class PrunedLlavaForConditionalGeneration(PruningGeneration, LlavaForConditionalGeneration):
    pass


class PrunedLlavaProcessor(LlavaProcessor):
    prune = PruneConfig()

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        """One image placeholder per visual token the model will keep."""
        if not prunes_at(self.prune, Stage.PROJECTOR):
            return super().replace_image_token(image_inputs, image_idx, **kwargs)
        return self.image_token * image_layout(self.layout_config, None).kept(self.prune.ratio)
