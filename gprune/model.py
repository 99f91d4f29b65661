"""The pruned model, what every family shares: G-Prune (or a baseline) between the projector and the language model.

`PruningModel` and `PruningGeneration` are mixed in before a family's own transformers classes (gprune/families/: one
module each says where its visual tokens sit). `gprune.families.set_prune` swaps a loaded model's classes for the
family's pruned ones (the weights are untouched, only the class changes) and sets the pruning config, so a loaded model
can switch configs without reloading.

Per image: every method gets the same budget (gprune/budget.py), and (positions="original") surviving tokens keep
their original position ids, so the text after an image sits where it would have without pruning.
"""

import itertools

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .budget import prunes_at, reduce_image
from .layout import ImageLayout
from .lm_pruning import LayerPlan, set_lm_plan
from .methods import METHODS
from .methods.base import Needs, Stage
from .pruning_state import PruningState
from .selection import check_finite
from .transformers_api import PlaceholderCount, PromptPositions, warn_if_untested
from .vision_attention import capture_cls_attention

warn_if_untested()

def padding_mask(attention_mask, input_ids) -> torch.Tensor:
    """The 2-D [B, L] mask (1 = a real token) from generate()'s 2-D mask or, with a static KV cache, the
    4-D [B, 1, L, cache] mask it builds for compilation (one per layer kind, in a dict, for a language model
    whose config names layer types, e.g. Qwen2): a real token attends to itself, padding does not."""
    if isinstance(attention_mask, dict):  # every kind's mask has the same diagonal; None where none is needed
        attention_mask = next((mask for mask in attention_mask.values() if mask is not None), None)
    if attention_mask is None:
        return torch.ones_like(input_ids)
    if attention_mask.dim() == 2:
        return attention_mask
    self_attention = attention_mask[:, 0].diagonal(dim1=-2, dim2=-1)[:, : input_ids.shape[1]]
    return (self_attention if self_attention.dtype == torch.bool else self_attention == 0).long()


def original_position_ids(input_ids, attention_mask, image_token_id, full_lengths, kept_indices):
    """Position ids [B, L] for a prompt whose images were pruned, keeping original positions.

    `kept_indices[i]` holds image i's surviving token indices within its unpruned sequence of
    `full_lengths[i]` tokens; images appear in the prompt in the same order (row-major). A kept
    token advances the position by its distance from the previous kept token, and the text after
    an image resumes at image_start + full_length. Padding (attention_mask 0) advances nothing.
    Computed on the device without waiting for it, bar one count that checks the prompt against the images.
    """
    mask = padding_mask(attention_mask, input_ids)
    step = mask.long().clone()
    placeholders = input_ids == image_token_id
    needed = sum(len(kept) for kept in kept_indices)
    if int(placeholders.sum()) != needed:
        raise ValueError(
            f"the prompt holds {int(placeholders.sum())} image placeholders but the pruned images need {needed}: "
            "the processor and the model disagree on the pruning config; use gprune.set_prune(model, processor, cfg)"
        )
    kept = [k.to(step.device) for k in kept_indices]
    # each kept token's distance from the one before it (the first: from -1)
    step.masked_scatter_(placeholders, torch.cat([k - F.pad(k[:-1], (1, 0), value=-1) for k in kept]))
    # the token after each image also skips the pruned tokens after its last kept one (none when the last is kept)
    trailing = torch.stack([full - 1 - k[-1] for full, k in zip(full_lengths, kept)])
    flat = torch.nonzero_static(placeholders.flatten(), size=needed)[:, 0]  # row-major, as the images
    last = torch.stack([flat[end - 1] for end in itertools.accumulate(len(k) for k in kept)])
    width = step.shape[1]
    padded = F.pad(step, (0, 1))  # a last column for the token after an image that ends its row: dropped
    padded.view(-1).index_add_(0, last // width * (width + 1) + last % width + 1, trailing)
    step = padded[:, :width]
    return (step.cumsum(-1) - 1).masked_fill(mask == 0, 0)


class PruningModel:
    """What a pruned model of every family shares, mixed in before transformers' own model class: the vision
    tower's features pruned between the projector and the language model, their original positions, the feature
    cache, a language-model method's plan. A family says where its visual tokens sit (`layouts_of`, from the
    pixels and the processor's per-image geometry, `IMAGE_INFO`), how the vision tower's [CLS] attention lines up
    with its packed features (`_pack_attention`) and what position ids kept tokens get (`kept_positions`).
    What it reads as it runs is its `pruning` (gprune.pruning_state.PruningState), set by gprune.set_prune."""
    pruning: PruningState

    IMAGE_INFO = "image_sizes"  # the processor output (and forward argument) giving each image's geometry
    PIXEL_DIMS: int | None = 4  # pixel_values.dim() when each row is one image (the cache needs it); None: never
    VISION_ARGUMENTS = ("vision_feature_layer", "vision_feature_select_strategy")  # forward's, for the tower

    def layouts_of(self, pixel_values, image_info) -> list[ImageLayout]:
        raise NotImplementedError

    def input_layouts(self, inputs) -> list[ImageLayout]:
        """Every image's layout in a processor's output (a batch), in prompt order."""
        if inputs.get("pixel_values") is None:
            return []
        return self.layouts_of(inputs["pixel_values"], inputs.get(self.IMAGE_INFO))

    def cls_attention_layer(self, feature_layer) -> torch.nn.Module:
        """The vision tower's attention module whose [CLS] row VisionZip ranks by (a family with a [CLS] token)."""
        raise NotImplementedError

    def _pack_attention(self, attention, pixel_values, image_info, strategy, dtype) -> list[torch.Tensor]:
        """Per image, the [CLS] attention of each of its tokens ([tokens, 1], in the packed features' order)."""
        raise NotImplementedError

    def kept_positions(self, input_ids, attention_mask, image, kwargs):
        """Position ids for a prompt whose images were pruned, each kept token at its unpruned position."""
        return original_position_ids(input_ids, attention_mask, self.config.image_token_id, image["full_lengths"],
                                     image["kept_indices"])

    def compact_positions(self, input_ids, attention_mask):
        """Position ids numbering a pruned prompt's tokens one after another; None: transformers' own do."""
        return None

    def _encode(self, pixel_values, image_info, kwargs):
        self.pruning.images_encoded += len(self.layouts_of(pixel_values, image_info))
        return super().get_image_features(pixel_values, **{self.IMAGE_INFO: image_info}, **kwargs)

    def _encode_with_attention(self, pixel_values, image_info, kwargs):
        """Features, and the vision tower's [CLS] attention packed exactly as they are ([full, 1] per image:
        the same crops, unpadding and newline slots, newlines scoring 0)."""
        layer = kwargs.get("vision_feature_layer")
        layer = self.config.vision_feature_layer if layer is None else layer
        strategy = kwargs.get("vision_feature_select_strategy") or self.config.vision_feature_select_strategy
        with capture_cls_attention(self.cls_attention_layer(layer)) as captured:
            outputs = self._encode(pixel_values, image_info, kwargs)
        attention = captured["attention"]  # [crops, 1 + patches]
        if strategy == "default":
            attention = attention[:, 1:]
        dtype = outputs.pooler_output[0].dtype
        outputs["vision_attention"] = self._pack_attention(attention, pixel_values, image_info, strategy, dtype)
        return outputs

    def _encode_cached(self, pixel_values, image_info, kwargs):
        """Packed features per image, running the vision tower only for images not in the cache."""
        cache, keys = self.pruning.feature_cache, self.pruning.cache_keys
        if keys is None or len(keys) != len(pixel_values):  # no keys from the host: hash the pixels
            sizes = image_info if image_info is not None else [pixels.shape[-2:] for pixels in pixel_values]
            keys = [cache.key(pixels, size) for pixels, size in zip(pixel_values, sizes)]
        found = [cache.get(key) for key in keys]
        missing = [i for i, features in enumerate(found) if features is None]
        if missing:
            fresh = self._encode(pixel_values[missing], None if image_info is None else image_info[missing],
                                 kwargs).pooler_output
            for i, features in zip(missing, fresh):
                cache.put(keys[i], features)
                found[i] = features
        return BaseModelOutputWithPooling(pooler_output=found)

    def get_image_features(self, pixel_values, image_sizes=None, image_grid_thw=None, **kwargs):
        # The image geometry, under the names generate() looks for in this signature (LLaVA's image_sizes,
        # Qwen2.5-VL's image_grid_thw), or second by position, as each family's forward passes it.
        image_info = image_sizes if image_sizes is not None else image_grid_thw
        kwargs["return_dict"] = True
        needs = METHODS[self.pruning.prune.method].needs if prunes_at(self.pruning.prune, Stage.PROJECTOR) else None
        if needs == Needs.VISION_ATTENTION:  # not cached: the cache holds features only
            outputs = self._encode_with_attention(pixel_values, image_info, kwargs)
        elif self.pruning.feature_cache is not None and pixel_values.dim() == self.PIXEL_DIMS:  # a row per image
            outputs = self._encode_cached(pixel_values, image_info, kwargs)
        else:
            outputs = self._encode(pixel_values, image_info, kwargs)
        layouts = self.layouts_of(pixel_values, image_info)
        outputs["layouts"] = layouts
        if not prunes_at(self.pruning.prune, Stage.PROJECTOR):
            return outputs
        guides = [g[:, 0] for g in outputs["vision_attention"]] if needs else [None] * len(layouts)
        check_finite(*outputs.pooler_output)  # once for the batch, not twice an image: each check waits for the device
        reduced = [reduce_image(f, lay, self.pruning.prune, g, finite_checked=True)
                   for f, lay, g in zip(outputs.pooler_output, layouts, guides)]
        kept = [indices for indices, _ in reduced]
        if self.pruning.trace is not None:
            self.pruning.trace.extend(zip(outputs.pooler_output, kept, layouts))
        outputs.pooler_output = [tokens for _, tokens in reduced]
        # Travel with the features (generate() encodes images before prefill) to set positions.
        outputs["kept_indices"] = kept
        outputs["full_lengths"] = [lay.full for lay in layouts]
        return outputs

    def _plan_layer_pruning(self, input_ids, image, kwargs) -> None:
        """At a prefill, where each sample's visual tokens sit and their layouts, for gprune.lm_pruning."""
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if cache is not None and cache.get_seq_length() > 0:
            return  # a decode step: the prefill's plan holds
        if image is None or input_ids is None:
            set_lm_plan(self.language_model, None)
            return
        layouts, columns, per_sample, start = image["layouts"], [], [], 0
        for row in input_ids == self.config.image_token_id:
            positions = row.nonzero()[:, 0]
            taken, count = [], 0
            while count < len(positions):
                taken.append(layouts[start])
                count, start = count + layouts[start].full, start + 1
            columns.append(positions)
            per_sample.append(taken)
        set_lm_plan(self.language_model, LayerPlan(self.pruning.prune, columns, per_sample, trace=self.pruning.trace))

    def _features(self, pixel_values, kwargs):
        tower = {name: kwargs.get(name) for name in self.VISION_ARGUMENTS}
        return {"image": self.get_image_features(pixel_values, kwargs.get(self.IMAGE_INFO), **tower)}

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, position_ids=None,
                mm_encoder_outputs=None, **kwargs):
        has_pixels = pixel_values is not None and pixel_values.size(0) > 0
        if not has_pixels and not mm_encoder_outputs and not hasattr(self.language_model, "layer_pruning"):
            # a decode step of a projector method (or none): nothing to prune, and the config left unread, so a
            # compiled decode step does not guard on it (one compile serves every method and ratio of a shape)
            return super().forward(input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                                   position_ids=position_ids, **kwargs)
        if prunes_at(self.pruning.prune, Stage.LANGUAGE_MODEL):
            if has_pixels and not mm_encoder_outputs:
                mm_encoder_outputs, pixel_values = self._features(pixel_values, kwargs), None
            self._plan_layer_pruning(input_ids, (mm_encoder_outputs or {}).get("image"), kwargs)
        else:
            set_lm_plan(self.language_model, None)
        if prunes_at(self.pruning.prune, Stage.PROJECTOR) and self.pruning.prune.positions == "original":
            if has_pixels and not mm_encoder_outputs:
                mm_encoder_outputs, pixel_values = self._features(pixel_values, kwargs), None
            image = (mm_encoder_outputs or {}).get("image")
            if image is not None and "kept_indices" in image:
                if input_ids is None:
                    raise ValueError("positions='original' needs input_ids to locate image tokens; pass input_ids")
                position_ids = self.kept_positions(input_ids, attention_mask, image, kwargs)
        elif prunes_at(self.pruning.prune, Stage.PROJECTOR) and position_ids is None and input_ids is not None:
            position_ids = self.compact_positions(input_ids, attention_mask)
        return super().forward(input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                               position_ids=position_ids, mm_encoder_outputs=mm_encoder_outputs, **kwargs)


class PruningGeneration(PromptPositions):
    """Mixed in before a family's ...ForConditionalGeneration: prompt positions for pruned images."""

    def prompt_position_ids(self, inputs_tensor, model_kwargs):
        """generate() fixes prompt positions before images are encoded and extends them by one per
        new token: give the text its original positions now (visual tokens get theirs at prefill)."""
        prune, pixel_values = self.model.pruning.prune, model_kwargs.get("pixel_values")
        if not (prunes_at(prune, Stage.PROJECTOR) and prune.positions == "original") or pixel_values is None:
            return None
        input_ids = model_kwargs.get("input_ids", inputs_tensor)
        layouts = self.model.layouts_of(pixel_values, model_kwargs.get(self.model.IMAGE_INFO))
        return original_position_ids(
            input_ids, model_kwargs.get("attention_mask"), self.config.image_token_id,
            [lay.full for lay in layouts], [torch.arange(lay.kept(prune.ratio), device=input_ids.device)
                                            for lay in layouts],
        )


class KeptPlaceholders(PlaceholderCount):
    """Mixed in before a processor that counts placeholders per image size (the anyres families): one placeholder per
    visual token the model will keep. The class names its family's layout function as `image_layout`."""

    def placeholders(self, image_size, full: int) -> int:
        if not prunes_at(self.pruning.prune, Stage.PROJECTOR):
            return full  # a language-model method sees every visual token in the prompt
        layout = self.image_layout(self.pruning.layout_config, image_size)
        return full - (layout.full - layout.kept(self.pruning.prune.ratio))
