"""Qwen2.5-VL (`Qwen/Qwen2.5-VL-*`): dynamic resolution, each image one view of the merged grid (every 2x2 patch
group is one token: a 448x448 image is 16 x 16 = 256 tokens), no newline tokens, M-RoPE positions over (time,
height, width). The same pruning as LLaVA (gprune/model.py) on that one view: every method keeps `ratio` of the
merged grid's tokens (`pool` pools over its rows and columns), the processor emits one `<|image_pad|>` per kept
token, and a kept token keeps its 3-D position of the unpruned layout: positions are computed for the unpruned
prompt (transformers' own `get_rope_index`) and sliced to the kept tokens; the text after an image sits where it
would unpruned (positions="compact": every token numbered one after another, as text). VisionZip needs a [CLS]
token, which Qwen2.5-VL's vision tower does not have (gprune/families/ refuses it)."""

import itertools

import torch
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

from ..budget import prunes_at
from ..layout import ImageLayout
from ..methods.base import Stage
from ..model import PruningModel, padding_mask
from ..transformers_api import PromptPositions, set_decode_offsets
from .family import Family

MODULE = "transformers.models.qwen2_5_vl"
RELIED_ON = {  # its placeholders, vision tower + merger, its M-RoPE positions and their generate() setup
    f"{MODULE}.processing_qwen2_5_vl:Qwen2_5_VLProcessor.replace_image_token": ("image_inputs", "image_idx"),
    f"{MODULE}.modeling_qwen2_5_vl:Qwen2_5_VLModel.get_image_features": ("pixel_values", "image_grid_thw"),
    f"{MODULE}.modeling_qwen2_5_vl:Qwen2_5_VLModel.get_rope_index":
        ("input_ids", "mm_token_type_ids", "image_grid_thw", "video_grid_thw", "second_per_grid_ts", "attention_mask"),
    f"{MODULE}.modeling_qwen2_5_vl:Qwen2_5_VLModel.forward": ("input_ids", "attention_mask", "position_ids"),
    # the decode offsets it sets (transformers_api.set_decode_offsets) are read here at each decode step
    f"{MODULE}.modeling_qwen2_5_vl:Qwen2_5_VLModel.compute_3d_position_ids":
        ("input_ids", "image_grid_thw", "video_grid_thw", "inputs_embeds", "attention_mask", "cache"),
    # FastV's hooks on its language model: the arguments they replace and read, the functions it scores with
    f"{MODULE}.modeling_qwen2_5_vl:Qwen2_5_VLDecoderLayer.forward":
        ("hidden_states", "attention_mask", "position_ids", "cache", "use_cache", "position_embeddings"),
    f"{MODULE}.modeling_qwen2_5_vl:Qwen2_5_VLAttention.forward":
        ("hidden_states", "attention_mask", "position_ids", "cache", "position_embeddings"),
    f"{MODULE}.modeling_qwen2_5_vl:apply_rotary_pos_emb": ("q", "k", "cos", "sin"),
    f"{MODULE}.modeling_qwen2_5_vl:eager_attention_forward":
        ("module", "query", "key", "value", "attention_mask", "scaling"),
}


def merged_layout(grid_thw, merge: int) -> ImageLayout:
    """One image's layout from its (time, height, width) patch grid: one view of the merged grid."""
    frames, rows, cols = (int(v) for v in grid_thw)
    rows, cols = frames * rows // merge, cols // merge  # an image is one frame (its two temporal patches merged)
    return ImageLayout(base=rows * cols, rows=0, cols=0, base_grid=(rows, cols), fit="whole")


def _windows(length: int, size: int) -> list[int]:
    """The extents of consecutive windows of `size` covering `length` (the last one shorter)."""
    return [size] * (length // size) + ([length % size] if length % size else [])


def image_flops(vision, layout: ImageLayout) -> tuple[float, float]:
    """(vision tower, merger) FLOPs of one Qwen2.5-VL image: the 3-D patch embedding, blocks of attention over
    windows of merged units (full attention in `fullatt_block_indexes`) with a SwiGLU MLP, then the merger MLP on
    each 2x2 patch group."""
    rows, cols = layout.base_grid
    merge, h, m = vision.spatial_merge_size, vision.hidden_size, vision.intermediate_size
    n = rows * cols * merge**2  # patches
    embed = 2 * n * h * vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
    window = vision.window_size // merge // vision.patch_size  # in merged units
    windowed = sum((r * c * merge**2) ** 2 for r in _windows(rows, window) for c in _windows(cols, window))
    linear = 2 * n * h * 4 * h + 3 * 2 * n * h * m  # q, k, v, out; gate, up, down
    blocks = sum(linear + 2 * 2 * h * (n * n if i in vision.fullatt_block_indexes else windowed)
                 for i in range(vision.depth))
    merged, width = n // merge**2, h * merge**2
    return embed + blocks, 2 * merged * width * (width + vision.out_hidden_size)


def vision_flops(config, layouts) -> tuple[float, float]:
    """Per image at its own resolution: the tower (windowed attention) and the merger."""
    parts = [image_flops(config.vision_config, layout) for layout in layouts]
    return (sum(p[0] for p in parts), sum(p[1] for p in parts))


def image_layout(config, grid_thw) -> ImageLayout:
    return merged_layout(grid_thw, config.vision_config.spatial_merge_size)


def unpruned_positions(model, input_ids, attention_mask, layouts, kept_indices):
    """M-RoPE position ids [3, B, L] of a pruned prompt: each row's image runs expanded to their unpruned length,
    transformers' `get_rope_index` on that prompt, then the kept tokens' columns (text columns all kept)."""
    merge = model.config.vision_config.spatial_merge_size
    full_lengths = [layout.full for layout in layouts]
    grid_thw = torch.tensor([[1, rows * merge, cols * merge] for rows, cols in (lay.base_grid for lay in layouts)],
                            device=input_ids.device)
    token_types = (input_ids == model.config.image_token_id).long()  # 1: image, 0: text
    mask = padding_mask(attention_mask, input_ids)
    rows, keeps, image = [], [], 0
    for ids, types, real in zip(input_ids, token_types, mask.bool()):
        ids, types = ids[real], types[real]
        pieces, keep, begin = [], [], 0
        for kind, run in itertools.groupby(types.tolist()):  # an image's run: between its vision markers
            end = begin + len(list(run))
            if kind != 1:  # text
                pieces.append((ids[begin:end], types[begin:end]))
                keep.append(torch.ones(end - begin, dtype=torch.bool))
            else:
                full, kept = full_lengths[image], kept_indices[image].cpu()
                if len(kept) != end - begin:
                    raise ValueError(f"image {image} has {end - begin} placeholders but {len(kept)} kept tokens: "
                                     "the processor and the model disagree on the pruning config; use "
                                     "gprune.set_prune(model, processor, cfg)")
                pieces.append((ids[begin].repeat(full), types[begin].repeat(full)))
                keep.append(torch.zeros(full, dtype=torch.bool).index_fill_(0, kept, True))
                image += 1
            begin = end
        rows.append((torch.cat([p[0] for p in pieces]), torch.cat([p[1] for p in pieces])))
        keeps.append(torch.cat(keep))
    width = max(len(ids) for ids, _ in rows)
    expanded = torch.zeros(len(rows), width, dtype=input_ids.dtype, device=input_ids.device)
    expanded_types, expanded_mask = torch.zeros_like(expanded), torch.zeros_like(expanded)
    for b, (ids, types) in enumerate(rows):  # left-padded, as the prompts are
        expanded[b, width - len(ids):], expanded_types[b, width - len(ids):] = ids, types
        expanded_mask[b, width - len(ids):] = 1
    full_positions, _ = Qwen2_5_VLModel.get_rope_index(model, expanded, expanded_types, grid_thw,
                                                        attention_mask=expanded_mask)
    positions = torch.zeros(3, *input_ids.shape, dtype=full_positions.dtype, device=input_ids.device)
    for b, keep in enumerate(keeps):
        kept_columns = full_positions[:, b, width - len(keep):][:, keep.to(input_ids.device)]
        positions[:, b, mask[b].bool()] = kept_columns
    return positions


class PrunedQwen2_5_VLModel(PruningModel, Qwen2_5_VLModel):
    IMAGE_INFO = "image_grid_thw"
    PIXEL_DIMS = None  # pixel_values holds every image's patches in one flat tensor: no per-image rows to cache
    VISION_ARGUMENTS = ()

    def layouts_of(self, pixel_values, image_grid_thw) -> list[ImageLayout]:
        # one read from the device, not three an image
        grids = image_grid_thw.tolist() if torch.is_tensor(image_grid_thw) else image_grid_thw
        return [image_layout(self.config, g) for g in grids]

    def kept_positions(self, input_ids, attention_mask, image, kwargs):
        """[4, B, L]: the text-only positions transformers prepends, then the kept tokens' unpruned M-RoPE ones."""
        positions = unpruned_positions(self, input_ids, attention_mask, image["layouts"], image["kept_indices"])
        real = padding_mask(attention_mask, input_ids)
        set_decode_offsets(self, (positions.amax(dim=(0, 2)) + 1 - real.sum(-1))[:, None])
        text = (real.cumsum(-1) - 1).masked_fill(real == 0, 0)
        return torch.cat([text[None], positions])

    def compact_positions(self, input_ids, attention_mask):
        """[4, B, L]: every token of the pruned prompt numbered one after another, the same on all three axes (kept
        visual tokens as text is: transformers' 3-D layout needs the whole grid)."""
        real = padding_mask(attention_mask, input_ids)
        set_decode_offsets(self, torch.zeros(len(input_ids), 1, dtype=torch.long, device=input_ids.device))
        return ((real.cumsum(-1) - 1).masked_fill(real == 0, 0))[None].expand(4, -1, -1)


class PrunedQwen2_5_VLForConditionalGeneration(PromptPositions, Qwen2_5_VLForConditionalGeneration):
    def prompt_position_ids(self, inputs_tensor, model_kwargs):
        """generate() fixes prompt positions before images are encoded: the unpruned layout's, sliced to the first
        kept-count tokens of each image (the text's are final; the images' are set at prefill, when the kept
        tokens are known)."""
        prune, grid_thw = self.model.pruning.prune, model_kwargs.get("image_grid_thw")
        if not prunes_at(prune, Stage.PROJECTOR) or grid_thw is None:
            return None
        input_ids, attention_mask = model_kwargs.get("input_ids", inputs_tensor), model_kwargs.get("attention_mask")
        if prune.positions == "compact":
            return self.model.compact_positions(input_ids, attention_mask)
        layouts = self.model.layouts_of(None, grid_thw)
        image = {"layouts": layouts, "kept_indices": [torch.arange(lay.kept(prune.ratio)) for lay in layouts]}
        return self.model.kept_positions(input_ids, attention_mask, image, model_kwargs)


class PrunedQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        """One image placeholder per visual token the model will keep."""
        if not prunes_at(self.pruning.prune, Stage.PROJECTOR):
            return super().replace_image_token(image_inputs, image_idx, **kwargs)
        layout = merged_layout(image_inputs["image_grid_thw"][image_idx], self.image_processor.merge_size)
        return self.image_token * layout.kept(self.pruning.prune.ratio)


FAMILY = Family("Qwen2.5-VL", "qwen2_5_vl", "Qwen/Qwen2.5-VL-7B-Instruct", "gprune_qwen2_5_vl",
                Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, PrunedQwen2_5_VLForConditionalGeneration,
                PrunedQwen2_5_VLModel, PrunedQwen2_5_VLProcessor, image_layout, vision_flops, None, RELIED_ON)
