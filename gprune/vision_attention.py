"""The vision tower's [CLS] attention to each patch, for methods that rank tokens by it (VisionZip):
the one interface such a method gets to the vision tower.

`capture_cls_attention(attention)` hooks the attention module of the layer whose output the model takes as features
(each family with a [CLS] token names it: `cls_attention_layer`) and yields a dict that gets "attention"
[crops, tokens] (the [CLS] query's softmax row, averaged over heads, [CLS] included at 0) when the tower runs.
One query row is computed from the layer's own input, so the tower itself runs unchanged (and with any attention
kernel).
"""

from contextlib import contextmanager

import torch


def cls_row(attention: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """[crops, tokens]: softmax(q_cls . k / sqrt(d)) averaged over heads."""
    crops, tokens, _ = hidden.shape
    heads, head_dim = attention.num_heads, attention.head_dim
    q = attention.q_proj(hidden[:, :1]).view(crops, 1, heads, head_dim).transpose(1, 2)
    k = attention.k_proj(hidden).view(crops, tokens, heads, head_dim).transpose(1, 2)
    logits = (q @ k.transpose(-1, -2)).float() * attention.scale  # [crops, heads, 1, tokens]
    return torch.softmax(logits, dim=-1).mean(dim=1)[:, 0]


@contextmanager
def capture_cls_attention(module: torch.nn.Module):
    captured = {}

    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        captured["attention"] = cls_row(module, hidden)

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield captured
    finally:
        handle.remove()
