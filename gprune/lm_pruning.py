"""Pruning inside the language model (FastV's stage), with the language model's own decoder layers.

`set_lm_plan(language_model, plan)` is called by the pruned LLaVA-NeXT at prefill with where each sample's images
sit and their layouts. Nothing of the language model is replaced: forward pre-hooks on its modules act while a
plan is set. As in FastV's reference code, layer K-1's attention gives the scores (the row of the last prompt token,
averaged over heads) and the visual tokens leave the sequence between layers K-1 and K:

- on layer K-1's attention module: the one attention row is computed from its own inputs, with its own projections
  and its modeling file's `apply_rotary_pos_emb` and `eager_attention_forward` (one query row: the cost of one key
  projection, not a second attention pass);
- on layer K: the method chooses per image with the same budget as every other method (`gprune.budget.reduce_image`:
  base view and grid at the ratio, newlines kept); the hidden states, position ids and rotary embeddings keep the
  chosen columns, and transformers' `create_causal_mask` builds the mask for the reduced sequence;
- on layers K.. : they get that mask and those positions instead of the whole prompt's. At each decode step layer K
  builds the mask over the reduced prompt and what was generated since.

Layers below K keep the whole prompt in their KV cache, layers from K only the survivors. A batch keeps one reduced
length: a sample that drops fewer tokens than the batch's most-dropping one keeps (R - its survivors) of its dropped
tokens as masked padding, so its answer equals batch 1's.
"""

from dataclasses import dataclass, field

import torch
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

from .budget import reduce_image
from .config import PruneConfig
from .layout import ImageLayout
from .transformers_api import attention_functions


@dataclass
class ForwardCall:
    """What one forward of the language model gives every layer's hook."""
    padding: torch.Tensor  # [B, past + new] 2-D padding mask (True: a real token)
    cache: object  # the KV cache, or None
    prefill: bool  # the prompt's forward (the plan has not reduced anything yet)


@dataclass
class LayerPlan:
    prune: PruneConfig
    visual_columns: list[torch.Tensor]  # per sample: the prompt columns holding its visual tokens, in order
    layouts: list[list[ImageLayout]]  # per sample: its images' layouts, in order
    trace: list | None = None  # the model's `trace`: each image's (scores, kept indices, layout) is appended
    # after prefill: the reduced prompt's keep mask [B, R] and the unreduced prompt's length
    reduced: torch.Tensor | None = None
    prompt_length: int | None = None
    call: ForwardCall | None = None  # the forward in progress
    attention: torch.Tensor | None = None  # [B, L] at prefill: layer K-1's last-row attention, averaged over heads
    # this forward's arguments for layers K..: positions of the reduced sequence (prefill only), a mask per layer kind
    position_ids: torch.Tensor | None = None
    position_embeddings: tuple | None = None
    masks: dict[str, torch.Tensor] = field(default_factory=dict)

    def layer_arguments(self, kind: str) -> dict:
        positions = {} if self.position_ids is None else {"position_ids": self.position_ids,
                                                          "position_embeddings": self.position_embeddings}
        return {**positions, "attention_mask": self.masks[kind]}


def last_token_attention(attention, hidden, position_embeddings, keep) -> torch.Tensor:
    """[B, L]: the attention weights the last token gives every token in this attention module (its input
    `hidden`, already normalized), averaged over heads; `keep` [B, L] masks padding."""
    apply_rotary_pos_emb, eager_attention_forward = attention_functions(attention)  # the backbone's own
    batch, length, _ = hidden.shape
    query = attention.q_proj(hidden[:, -1:]).view(batch, 1, -1, attention.head_dim).transpose(1, 2)
    key = attention.k_proj(hidden).view(batch, length, -1, attention.head_dim).transpose(1, 2)
    cos, sin = position_embeddings
    query, _ = apply_rotary_pos_emb(query, query, cos[:, -1:], sin[:, -1:])
    key, _ = apply_rotary_pos_emb(key, key, cos, sin)
    mask = torch.zeros(batch, 1, 1, length, dtype=query.dtype, device=query.device)
    mask = mask.masked_fill(~keep[:, None, None, :].bool(), torch.finfo(query.dtype).min)
    _, weights = eager_attention_forward(attention, query, key, key, mask, scaling=attention.scaling)
    return weights.mean(dim=1)[:, 0]


def choose_columns(plan: LayerPlan, attention: torch.Tensor, keep: torch.Tensor):
    """Per sample, the prompt columns that go on (text and surviving visual tokens), one length R for the
    batch: ([B, R] columns, [B, R] keep mask with the extra dropped columns masked)."""
    length = attention.shape[1]
    kept_columns = []  # per sample: [L] true for text and surviving visual tokens
    for row, (columns, layouts) in enumerate(zip(plan.visual_columns, plan.layouts)):
        kept = torch.ones(length, dtype=torch.bool, device=attention.device)
        kept[columns] = False
        start = 0
        for layout in layouts:
            image_columns = columns[start : start + layout.full]
            scores = attention[row, image_columns][:, None]
            indices, _ = reduce_image(scores, layout, plan.prune)
            kept[image_columns[indices]] = True
            if plan.trace is not None:
                plan.trace.append((scores, indices, layout))
            start += layout.full
        kept_columns.append(kept)
    reduced = max(int(k.sum()) for k in kept_columns)
    columns, mask = [], []
    for row, kept in enumerate(kept_columns):
        take = kept.clone()
        take[(~kept).nonzero()[: reduced - int(kept.sum()), 0]] = True  # fillers: present, masked
        cols = take.nonzero()[:, 0]
        columns.append(cols)
        mask.append(keep[row, cols] & kept[cols])
    return torch.stack(columns), torch.stack(mask)


def reduced_masks(config, hidden, padding, cache, position_ids, layer: int) -> dict:
    """The masks (as transformers builds them for its attention implementation) for layers `layer`.. on the
    reduced sequence, one per kind of layer: sized against that layer's cache, which holds only survivors."""
    arguments = {"config": config, "inputs_embeds": hidden, "attention_mask": padding, "cache": cache,
                 "position_ids": position_ids, "layer_idx": layer}
    masks = {"full_attention": create_causal_mask(**arguments)}
    if getattr(config, "sliding_window", None):
        masks["sliding_attention"] = create_sliding_window_causal_mask(**arguments)
    return masks


def _layer_kind(config, index: int) -> str:
    kinds = getattr(config, "layer_types", None)
    if kinds:
        return kinds[index]
    return "sliding_attention" if getattr(config, "sliding_window", None) else "full_attention"


class LayerPruning:
    """The hooks of one language model, installed on the first plan and removed with `set_lm_plan(lm, None)`."""

    def __init__(self, language_model):
        self.language_model, self.plan = language_model, None
        self.handles = [language_model.register_forward_pre_hook(self.on_forward, with_kwargs=True)]
        for index, layer in enumerate(language_model.layers):
            self.handles.append(layer.self_attn.register_forward_pre_hook(
                lambda module, args, kwargs, index=index: self.on_attention(index, module, kwargs), with_kwargs=True))
            self.handles.append(layer.register_forward_pre_hook(
                lambda module, args, kwargs, index=index: self.on_layer(index, args, kwargs), with_kwargs=True))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def on_forward(self, module, args, kwargs):
        """Note this forward's padding mask and cache (each layer's hook needs them)."""
        if self.plan is None:
            return None
        embeds = kwargs.get("inputs_embeds")
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        queries = embeds.shape[1] if embeds is not None else kwargs["input_ids"].shape[1]
        past = cache.get_seq_length() if cache is not None else 0
        padding = kwargs.get("attention_mask")
        if padding is None or padding.dim() != 2:
            device = (embeds if embeds is not None else kwargs["input_ids"]).device
            padding = torch.ones(len(embeds if embeds is not None else kwargs["input_ids"]), past + queries,
                                 dtype=torch.bool, device=device)
        self.plan.call = ForwardCall(padding.bool(), cache, prefill=self.plan.reduced is None)
        return None

    def on_attention(self, index, module, kwargs):
        """Layer K-1's attention, at prefill: the scores, from the inputs it is given."""
        plan = self.plan
        if plan is not None and plan.call.prefill and index == plan.prune.lm_layer - 1:
            plan.attention = last_token_attention(module, kwargs["hidden_states"], kwargs["position_embeddings"],
                                                  plan.call.padding)
        return None

    def on_layer(self, index, args, kwargs):
        """Layers from K: the reduced sequence's hidden states (at layer K's prefill), mask and positions."""
        plan = self.plan
        if plan is None or index < plan.prune.lm_layer:
            return None
        hidden = args[0] if args else kwargs.pop("hidden_states")
        if index == plan.prune.lm_layer:
            hidden = self.reduce(hidden, kwargs) if plan.call.prefill else self.decode_step(hidden, kwargs)
        kwargs = {**kwargs, **plan.layer_arguments(_layer_kind(self.language_model.config, index))}
        return (hidden, *args[1:]), kwargs

    def reduce(self, hidden, kwargs):
        """At prefill, before layer K: keep the chosen columns, and the arguments layers K.. get for them."""
        plan, padding = self.plan, self.plan.call.padding
        columns, reduced = choose_columns(plan, plan.attention, padding)
        plan.reduced, plan.prompt_length, plan.attention = reduced, hidden.shape[1], None
        hidden = hidden.gather(1, columns[..., None].expand(-1, -1, hidden.shape[-1]))
        position_ids = kwargs["position_ids"].expand(len(columns), -1).gather(1, columns)
        cos, sin = kwargs["position_embeddings"]
        gathered = columns[..., None].expand(-1, -1, cos.shape[-1])
        embeddings = (cos.expand(len(columns), -1, -1).gather(1, gathered),
                      sin.expand(len(columns), -1, -1).gather(1, gathered))
        plan.position_ids, plan.position_embeddings = position_ids, embeddings
        plan.masks = self.masks(hidden, reduced, position_ids)
        return hidden

    def decode_step(self, hidden, kwargs):
        """A decode step: the mask over the reduced prompt, then what was generated since (positions unchanged)."""
        plan, padding = self.plan, self.plan.call.padding
        reduced = torch.cat([plan.reduced, padding[:, plan.prompt_length:]], dim=1)
        plan.position_ids = plan.position_embeddings = None
        plan.masks = self.masks(hidden, reduced, kwargs.get("position_ids"))
        return hidden

    def masks(self, hidden, padding, position_ids) -> dict:
        return reduced_masks(self.language_model.config, hidden, padding, self.plan.call.cache, position_ids,
                             self.plan.prune.lm_layer)


def set_lm_plan(language_model, plan: LayerPlan | None) -> None:
    """Turn layer pruning on (a plan for the coming prefill) or off (None) on a loaded language model."""
    pruning = getattr(language_model, "layer_pruning", None)
    if plan is None:
        if pruning is not None:
            pruning.remove()
            del language_model.layer_pruning
        return
    if pruning is None:
        pruning = language_model.layer_pruning = LayerPruning(language_model)
    pruning.plan = plan
