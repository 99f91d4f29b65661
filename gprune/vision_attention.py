"""The vision tower's [CLS] attention to each patch, for methods that rank tokens by it (VisionZip):
the one interface such a method gets to the vision tower.

`capture_cls_attention(vision_tower, feature_layer)` hooks the attention of the layer whose output
LLaVA-NeXT takes as features and yields a dict that gets "attention" [crops, tokens] (the [CLS] query's
softmax row, averaged over heads, [CLS] included at 0) when the tower runs. One query row is computed
from the layer's own input, so the tower itself runs unchanged (and with any attention kernel).
"""

from contextlib import contextmanager

import torch


def attention_layer(vision_tower, feature_layer) -> torch.nn.Module:
    """The attention module of the layer whose output is hidden_states[feature_layer] (the last one, for
    a list of layers); hidden_states[0] is the embeddings, so layer i gives hidden_states[i + 1]."""
    layers = getattr(vision_tower, "vision_model", vision_tower).encoder.layers  # transformers 5.24: no wrapper
    index = feature_layer[-1] if isinstance(feature_layer, (list, tuple)) else feature_layer
    return layers[index % (len(layers) + 1) - 1].self_attn


def cls_row(attention: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """[crops, tokens]: softmax(q_cls . k / sqrt(d)) averaged over heads."""
    crops, tokens, _ = hidden.shape
    heads, head_dim = attention.num_heads, attention.head_dim
    q = attention.q_proj(hidden[:, :1]).view(crops, 1, heads, head_dim).transpose(1, 2)
    k = attention.k_proj(hidden).view(crops, tokens, heads, head_dim).transpose(1, 2)
    logits = (q @ k.transpose(-1, -2)).float() * attention.scale  # [crops, heads, 1, tokens]
    return torch.softmax(logits, dim=-1).mean(dim=1)[:, 0]


@contextmanager
def capture_cls_attention(vision_tower, feature_layer):
    module, captured = attention_layer(vision_tower, feature_layer), {}

    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        captured["attention"] = cls_row(module, hidden)

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield captured
    finally:
        handle.remove()


def cls_attention_flops(vision, crops: int) -> float:
    """Per crop: the k projection of every token, one q projection, one row of scores."""
    side = vision.image_size // vision.patch_size
    n, h = side * side + 1, vision.hidden_size
    return crops * (2 * n * h * h + 2 * h * h + 2 * n * h)
