"""LLaVA-NeXT (`llava-hf/llava-v1.6-*`, `llama3-llava-next-8b-hf`, ...): transformers packs one image as
[base view: `base` tokens] + [high-resolution grid, unpadded: `rows` x (`cols` + 1) tokens, the last of each row the
learned `image_newline`]. CLIP tower with a [CLS] token; the language model is Llama, Mistral or Qwen2 (1-D
positions)."""

import torch
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor
from transformers.models.llava_next.modeling_llava_next import (
    LlavaNextModel,
    get_anyres_image_grid_shape,
    unpad_image,
)

from ..layout import ImageLayout
from ..model import KeptPlaceholders, PruningGeneration, PruningModel
from . import clip
from .family import Family

MODULE = "transformers.models.llava_next"
RELIED_ON = {
    f"{MODULE}.processing_llava_next:LlavaNextProcessor._get_number_of_features":  # kept placeholders
        ("orig_height", "orig_width", "height", "width"),
    f"{MODULE}.modeling_llava_next:LlavaNextModel.get_image_features": ("pixel_values", "image_sizes"),
    f"{MODULE}.modeling_llava_next:LlavaNextModel.pack_image_features":  # packing (VisionZip's guide)
        ("image_features", "image_sizes", "vision_feature_select_strategy", "image_newline"),
    f"{MODULE}.modeling_llava_next:LlavaNextModel.forward":
        ("input_ids", "pixel_values", "image_sizes", "attention_mask", "position_ids"),
    f"{MODULE}.modeling_llava_next:get_anyres_image_grid_shape": ("image_size", "grid_pinpoints", "patch_size"),
    f"{MODULE}.modeling_llava_next:unpad_image": ("tensor", "original_size"),
}


def image_layout(config, image_size) -> ImageLayout:
    """Layout of one image of original (height, width) `image_size`."""
    vision = config.vision_config
    side = vision.image_size // vision.patch_size
    grid_h, grid_w = get_anyres_image_grid_shape(image_size, config.image_grid_pinpoints, vision.image_size)
    # transformers' own unpadding, applied to an empty tensor, gives the grid shape it will produce.
    _, rows, cols = unpad_image(torch.empty(0, grid_h * side, grid_w * side), image_size).shape
    return ImageLayout(base=clip.tokens_per_crop(config), rows=rows, cols=cols, crops=grid_h * grid_w + 1)


class PrunedLlavaNextModel(PruningModel, LlavaNextModel):
    PIXEL_DIMS = 5  # [images, crops, 3, H, W]

    def layouts_of(self, pixel_values, image_sizes) -> list[ImageLayout]:
        sizes = image_sizes.tolist() if torch.is_tensor(image_sizes) else image_sizes  # one read from the device
        return [image_layout(self.config, size) for size in sizes]

    def cls_attention_layer(self, feature_layer) -> torch.nn.Module:
        return clip.cls_attention_layer(self.vision_tower, feature_layer)

    def _pack_attention(self, attention, pixel_values, image_sizes, strategy, dtype) -> list[torch.Tensor]:
        """The same crops, unpadding and newline slots as the features; newlines score 0."""
        counts = [layout.crops for layout in self.layouts_of(pixel_values, image_sizes)]
        per_image = torch.split(attention[..., None].to(dtype), counts)
        newline = torch.zeros(1, dtype=dtype, device=attention.device)
        return self.pack_image_features(list(per_image), image_sizes, strategy, newline)[0]


class PrunedLlavaNextForConditionalGeneration(PruningGeneration, LlavaNextForConditionalGeneration):
    pass


class PrunedLlavaNextProcessor(KeptPlaceholders, LlavaNextProcessor):
    image_layout = staticmethod(image_layout)


FAMILY = Family("LLaVA-NeXT", "llava_next", "llava-hf/llama3-llava-next-8b-hf", "gprune_llava_next",
                LlavaNextForConditionalGeneration, LlavaNextProcessor, PrunedLlavaNextForConditionalGeneration,
                PrunedLlavaNextModel, PrunedLlavaNextProcessor, image_layout, clip.vision_flops, clip.cls_flops,
                RELIED_ON)
