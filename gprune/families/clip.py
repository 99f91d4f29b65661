"""What LLaVA-1.5 and LLaVA-NeXT share: a CLIP vision tower with a [CLS] token, crops of `image_size` pixels, a
two-layer MLP projector on the selected layer's tokens ([CLS] dropped unless the strategy is "full")."""

import torch

from ..vision_flops import cls_attention_flops, mlp_projector_flops, vit_flops


def tokens_per_crop(config) -> int:
    side = config.vision_config.image_size // config.vision_config.patch_size
    return side * side + (1 if config.vision_feature_select_strategy == "full" else 0)


def vision_flops(config, layouts) -> tuple[float, float]:
    crops = sum(layout.crops for layout in layouts)
    return (vit_flops(config.vision_config, crops, cls_token=True),
            mlp_projector_flops(config, crops, tokens_per_crop(config)))


def cls_flops(config, crops: int) -> float:
    return cls_attention_flops(config.vision_config, crops)


def cls_attention_layer(vision_tower, feature_layer) -> torch.nn.Module:
    """The attention module of the layer whose output is hidden_states[feature_layer] (the last one, for
    a list of layers); hidden_states[0] is the embeddings, so layer i gives hidden_states[i + 1]."""
    layers = getattr(vision_tower, "vision_model", vision_tower).encoder.layers  # transformers 5.24: no wrapper
    index = feature_layer[-1] if isinstance(feature_layer, (list, tuple)) else feature_layer
    return layers[index % (len(layers) + 1) - 1].self_attn
