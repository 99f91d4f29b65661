"""LLaVA-1.5 (`llava-hf/llava-1.5-*-hf`): one 336 px view of 24 x 24 = 576 visual tokens per image (the shortest
side resized, centre cropped), no grid, no newline tokens. CLIP tower with a [CLS] token; 1-D positions: kept tokens
keep their original ones (or are renumbered: positions="compact"), and the processor emits one placeholder per kept
token."""

import torch
from transformers import LlavaForConditionalGeneration, LlavaProcessor
from transformers.models.llava.modeling_llava import LlavaModel

from ..budget import prunes_at
from ..layout import ImageLayout
from ..methods.base import Stage
from ..model import PruningGeneration, PruningModel
from . import clip
from .family import Family

MODULE = "transformers.models.llava"
RELIED_ON = {  # its placeholders per image, its vision tower + projector, its prefill
    f"{MODULE}.processing_llava:LlavaProcessor.replace_image_token": ("image_inputs", "image_idx"),
    f"{MODULE}.modeling_llava:LlavaModel.get_image_features":
        ("pixel_values", "vision_feature_layer", "vision_feature_select_strategy", "image_sizes"),
    f"{MODULE}.modeling_llava:LlavaModel.forward": ("input_ids", "pixel_values", "attention_mask", "position_ids"),
}


def image_layout(config, image_size=None) -> ImageLayout:
    """Every image is one square view, whatever its size."""
    return ImageLayout(base=clip.tokens_per_crop(config), rows=0, cols=0, fit="crop")


class PrunedLlavaModel(PruningModel, LlavaModel):
    PIXEL_DIMS = 4  # [images, 3, H, W]

    def layouts_of(self, pixel_values, image_sizes) -> list[ImageLayout]:
        return [image_layout(self.config)] * len(pixel_values)

    def cls_attention_layer(self, feature_layer) -> torch.nn.Module:
        return clip.cls_attention_layer(self.vision_tower, feature_layer)

    def _pack_attention(self, attention, pixel_values, image_sizes, strategy, dtype) -> list[torch.Tensor]:
        """One view per image: its row of [CLS] attention is already in the features' order."""
        return list(attention[..., None].to(dtype))


class PrunedLlavaForConditionalGeneration(PruningGeneration, LlavaForConditionalGeneration):
    pass


class PrunedLlavaProcessor(LlavaProcessor):
    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        """One image placeholder per visual token the model will keep."""
        if not prunes_at(self.pruning.prune, Stage.PROJECTOR):
            return super().replace_image_token(image_inputs, image_idx, **kwargs)
        return self.image_token * image_layout(self.pruning.layout_config).kept(self.pruning.prune.ratio)


FAMILY = Family("LLaVA-1.5", "llava", "llava-hf/llava-1.5-7b-hf", "gprune_llava", LlavaForConditionalGeneration,
                LlavaProcessor, PrunedLlavaForConditionalGeneration, PrunedLlavaModel, PrunedLlavaProcessor,
                image_layout, clip.vision_flops, clip.cls_flops, RELIED_ON)
