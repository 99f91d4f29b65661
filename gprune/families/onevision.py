"""LLaVA-OneVision (`llava-hf/llava-onevision-qwen2-*-ov-hf`): a SigLIP tower (no [CLS] token: VisionZip is
refused), a Qwen2 language model (1-D positions), and LLaVA-NeXT's packing with "anyres-max": [base view] + [the
unpadded grid of high-resolution crops, `rows` x (`cols` + 1) tokens with a newline ending each row], the grid scaled
down (bilinear) when it holds more than `max` (9) crops' worth of tokens. One image per prompt: transformers does not
split an image of a several-image prompt into crops, and that layout is not modelled here."""

import math

import torch
from transformers import LlavaOnevisionForConditionalGeneration, LlavaOnevisionProcessor
from transformers.models.llava_onevision.modeling_llava_onevision import (
    LlavaOnevisionModel,
    get_anyres_image_grid_shape,
    unpad_image,
)

from ..layout import ImageLayout
from ..model import KeptPlaceholders, PruningGeneration, PruningModel
from ..vision_flops import mlp_projector_flops, vit_flops
from .family import Family

MODULE = "transformers.models.llava_onevision"
RELIED_ON = {
    f"{MODULE}.processing_llava_onevision:LlavaOnevisionProcessor._get_number_of_features":
        ("orig_height", "orig_width", "height", "width"),
    f"{MODULE}.modeling_llava_onevision:LlavaOnevisionModel.get_image_features":
        ("pixel_values", "image_sizes", "vision_feature_layer", "vision_feature_select_strategy",
         "vision_aspect_ratio", "batch_num_images"),
    f"{MODULE}.modeling_llava_onevision:LlavaOnevisionModel.forward":
        ("input_ids", "pixel_values", "image_sizes", "pixel_values_videos", "image_sizes_videos", "attention_mask",
         "position_ids"),
    f"{MODULE}.modeling_llava_onevision:get_anyres_image_grid_shape": ("image_size", "grid_pinpoints", "patch_size"),
    f"{MODULE}.modeling_llava_onevision:unpad_image": ("tensor", "original_size"),
}


def tokens_per_crop(config) -> int:
    side = config.vision_config.image_size // config.vision_config.patch_size
    return side * side - (1 if config.vision_feature_select_strategy == "default" else 0)


def image_layout(config, image_size) -> ImageLayout:
    """Layout of one image of original (height, width) `image_size`, as transformers' pack_image_features makes it."""
    vision = config.vision_config
    side = vision.image_size // vision.patch_size
    grid_h, grid_w = get_anyres_image_grid_shape(image_size, config.image_grid_pinpoints, vision.image_size)
    _, rows, cols = unpad_image(torch.empty(0, grid_h * side, grid_w * side), image_size).shape
    most = int(config.vision_aspect_ratio.removeprefix("anyres_max_"))
    scale = math.sqrt(rows * cols / (most * side**2))
    if scale > 1.1:  # the grid is interpolated down to about `most` crops' worth of tokens
        rows, cols = int(rows // scale), int(cols // scale)
    return ImageLayout(base=tokens_per_crop(config), rows=rows, cols=cols, crops=grid_h * grid_w + 1)


def vision_flops(config, layouts) -> tuple[float, float]:
    crops = sum(layout.crops for layout in layouts)
    return (vit_flops(config.vision_config, crops, cls_token=False),
            mlp_projector_flops(config, crops, tokens_per_crop(config)))


class PrunedLlavaOnevisionModel(PruningModel, LlavaOnevisionModel):
    PIXEL_DIMS = 5  # [images, crops, 3, H, W]
    VISION_ARGUMENTS = ("vision_feature_layer", "vision_feature_select_strategy", "batch_num_images")

    def layouts_of(self, pixel_values, image_sizes) -> list[ImageLayout]:
        sizes = image_sizes.tolist() if torch.is_tensor(image_sizes) else image_sizes  # one read from the device
        return [image_layout(self.config, size) for size in sizes]


class PrunedLlavaOnevisionForConditionalGeneration(PruningGeneration, LlavaOnevisionForConditionalGeneration):
    pass


class PrunedLlavaOnevisionProcessor(KeptPlaceholders, LlavaOnevisionProcessor):
    image_layout = staticmethod(image_layout)


FAMILY = Family("LLaVA-OneVision", "llava_onevision", "llava-hf/llava-onevision-qwen2-7b-ov-hf",
                "gprune_llava_onevision", LlavaOnevisionForConditionalGeneration, LlavaOnevisionProcessor,
                PrunedLlavaOnevisionForConditionalGeneration, PrunedLlavaOnevisionModel, PrunedLlavaOnevisionProcessor,
                image_layout, vision_flops, None, RELIED_ON)
