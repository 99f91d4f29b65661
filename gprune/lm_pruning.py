"""Pruning inside the language model (FastV's stage): the interface a "language_model" method acts through.

`set_lm_plan(language_model, plan)` is called by the pruned LLaVA-NeXT at prefill with where each
sample's images sit and their layouts. The language model (its class swapped to `LayerPrunedLM`) then
runs layers [0, K) on the whole prompt, computes the one attention row it needs (the last prompt
token's, in layer K-1, averaged over heads), lets the method choose per image with the same budget as
every other method (`gprune.model.reduce_image`: base view and grid at the ratio, newlines kept), and
runs layers [K, L) on the reduced sequence. Layers below K keep the whole prompt in their KV cache;
layers from K keep only the survivors, so every decode step attends over the reduced sequence there.

A batch keeps one reduced length: a sample that drops fewer tokens than the batch's most-dropping one
keeps (R - its survivors) of its dropped tokens as masked padding, so its answer equals batch 1's.
Masks are additive (0 / dtype min), built here for both lengths: eager and SDPA attention take them.
"""

import inspect
from dataclasses import dataclass, field

import torch
from transformers.modeling_outputs import BaseModelOutputWithPast

CACHE_FIELD = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


@dataclass
class LayerPlan:
    prune: object  # the PruneConfig
    visual_columns: list[torch.Tensor]  # per sample: the prompt columns holding its visual tokens, in order
    layouts: list[list]  # per sample: its images' ImageLayouts, in order
    state: dict = field(default_factory=dict)  # after prefill: columns kept, their mask, the prompt length
    trace: list | None = None  # the model's `trace`: each image's (scores, kept indices, layout) is appended


def additive_mask(keep: torch.Tensor, queries: int, dtype) -> torch.Tensor:
    """[B, 1, q, kv] additive mask: query i (the last `queries` of kv) sees key j <= its own position
    where `keep[b, j]` is true."""
    kv = keep.shape[1]
    keys, own = torch.arange(kv, device=keep.device), torch.arange(kv - queries, kv, device=keep.device)
    causal = keys[None, :] <= own[:, None]
    allowed = causal[None] & keep[:, None, :].bool()
    return torch.zeros(allowed.shape, dtype=dtype, device=keep.device).masked_fill(
        ~allowed, torch.finfo(dtype).min)[:, None]


def _rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


def last_token_attention(layer, hidden, position_embeddings, keep) -> torch.Tensor:
    """[B, L]: the attention the last token gives every token in `layer`, averaged over heads (FastV's
    score). One query row: its cost is one k projection of the prompt, not a second attention pass."""
    attention = layer.self_attn
    x = layer.input_layernorm(hidden)
    batch, length, _ = x.shape
    head_dim = attention.head_dim
    q = attention.q_proj(x[:, -1:]).view(batch, 1, -1, head_dim).transpose(1, 2)
    k = attention.k_proj(x).view(batch, length, -1, head_dim).transpose(1, 2)
    cos, sin = position_embeddings
    q, k = _rotate(q, cos[:, -1:], sin[:, -1:]), _rotate(k, cos, sin)
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)  # grouped-query heads
    logits = (q @ k.transpose(-1, -2)).float() * attention.scaling  # [B, H, 1, L]
    logits = logits.masked_fill(~keep[:, None, None, :].bool(), float("-inf"))
    return torch.softmax(logits, dim=-1).mean(dim=1)[:, 0]


def choose_columns(plan: LayerPlan, attention: torch.Tensor, keep: torch.Tensor):
    """Per sample, the prompt columns that go on (text and surviving visual tokens), one length R for the
    batch: ([B, R] columns, [B, R] keep mask with the extra dropped columns masked)."""
    from .model import reduce_image  # the one budget rule every method follows

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


class LayerPrunedLM:
    """Mixed into the language model's class (see `lm_pruning_class`) while a language-model method
    is active. Its forward runs the decoder layers itself, with two mask lengths."""

    lm_plan: LayerPlan | None = None

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                use_cache=None, **kwargs):
        cache = kwargs.pop(CACHE_FIELD, None) or kwargs.pop("past_key_values", None)
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        batch, queries, _ = inputs_embeds.shape
        if use_cache and cache is None:
            from transformers import DynamicCache

            cache = DynamicCache(config=self.config)
        past = cache.get_seq_length() if cache is not None else 0
        if position_ids is None:
            position_ids = (torch.arange(queries, device=inputs_embeds.device) + past)[None].expand(batch, -1)
        full = torch.ones(batch, past + queries, dtype=torch.bool, device=inputs_embeds.device)
        if attention_mask is not None and attention_mask.dim() == 2:
            full = attention_mask.bool()
        plan, dtype = self.lm_plan, inputs_embeds.dtype
        first_pruned = plan.prune.lm_layer if plan is not None else len(self.layers)
        prefill = plan is not None and not plan.state
        hidden = inputs_embeds
        embeddings = self.rotary_emb(hidden, position_ids=position_ids)
        mask = additive_mask(full, queries, dtype)
        layer_kwargs = {self.layer_cache_keyword: cache, "use_cache": use_cache}
        for index, layer in enumerate(self.layers):
            if index == first_pruned:
                if prefill:
                    attention = last_token_attention(layer, hidden, embeddings, full)
                    columns, reduced = choose_columns(plan, attention, full)
                    plan.state = {"reduced": reduced, "prompt": queries}
                    hidden = hidden.gather(1, columns[..., None].expand(-1, -1, hidden.shape[-1]))
                    position_ids = position_ids.gather(1, columns)
                    embeddings = self.rotary_emb(hidden, position_ids=position_ids)
                    mask = additive_mask(reduced, reduced.shape[1], dtype)
                elif plan is not None:  # a decode step: the reduced prompt, then what was generated since
                    reduced = torch.cat([plan.state["reduced"], full[:, plan.state["prompt"]:]], dim=1)
                    mask = additive_mask(reduced, queries, dtype)
            hidden = layer(hidden, attention_mask=mask, position_ids=position_ids,
                           position_embeddings=embeddings, **layer_kwargs)
        output = BaseModelOutputWithPast(last_hidden_state=self.norm(hidden))
        output[CACHE_FIELD] = cache
        return output


def set_lm_plan(language_model, plan: LayerPlan | None) -> None:
    """Turn layer pruning on (a plan for the coming prefill) or off (None) on a loaded language model."""
    base = type(language_model)
    if plan is None:
        if isinstance(language_model, LayerPrunedLM):
            language_model.__class__ = base.__mro__[2]  # (the mixed class, LayerPrunedLM, the original)
        return
    if not isinstance(language_model, LayerPrunedLM):
        # transformers 5.24 names the decoder layers' cache argument `cache`, earlier 5.x `past_key_values`
        parameters = inspect.signature(type(language_model.layers[0]).forward).parameters
        keyword = "cache" if "cache" in parameters else "past_key_values"
        language_model.__class__ = type(f"LayerPruned{base.__name__}", (LayerPrunedLM, base),
                                        {"layer_cache_keyword": keyword})
    language_model.lm_plan = plan
