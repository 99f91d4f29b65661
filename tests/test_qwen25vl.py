"""Qwen2.5-VL's own geometry and positions (`Qwen2_5_VLForConditionalGeneration`: dynamic resolution, 2x2 merger,
M-RoPE; what every family shares: tests/test_families.py): each image one view of its own merged grid, kept tokens
at their 3-D positions of the unpruned prompt, or numbered one after another (compact)."""

import pytest
import torch
from test_families import SAMPLES, build, prompt_inputs

from gprune import PruneConfig, set_prune


@pytest.fixture(scope="module")
def qwen():
    return build("qwen2_5_vl")


def test_each_image_is_one_view_of_its_own_merged_grid(qwen):
    model, processor = qwen
    layouts = model.model.input_layouts(prompt_inputs(processor, SAMPLES))
    assert [layout.base_grid for layout in layouts] == [(8, 8), (6, 10), (11, 5), (5, 8)]
    assert all(layout.rows == 0 and layout.full == layout.base for layout in layouts)


@pytest.mark.parametrize("method", ["gprune", "random", "pool"])
def test_kept_tokens_keep_their_3d_positions_of_the_unpruned_prompt(qwen, method):
    model, processor = qwen
    samples = SAMPLES[1:3]  # two rows of different lengths: left padding
    set_prune(model, processor, PruneConfig())
    full = prompt_inputs(processor, samples)
    expected, _ = model.model.get_rope_index(full["input_ids"], full["mm_token_type_ids"], full["image_grid_thw"],
                                             attention_mask=full["attention_mask"])
    set_prune(model, processor, PruneConfig(method=method, ratio=0.7))
    inputs = prompt_inputs(processor, samples)
    seen = []
    handle = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["position_ids"]), with_kwargs=True)
    try:
        with torch.no_grad():
            model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)
            kept = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])["kept_indices"]
    finally:
        handle.remove()
        set_prune(model, processor, PruneConfig())
    prefill, step = seen[0], seen[1]  # [4, B, L]: text-only positions, then (time, height, width)
    for row in range(len(samples)):
        image = (inputs["input_ids"][row] == model.config.image_token_id).nonzero()[:, 0]
        full_image = (full["input_ids"][row] == model.config.image_token_id).nonzero()[:, 0]
        assert torch.equal(prefill[1:, row, image], expected[:, row, full_image[kept[row]]])
        # the text after the image, and the first new token, where they are unpruned
        assert torch.equal(prefill[1:, row, -1], expected[:, row, -1])
        assert (step[1:, row, 0] == expected[:, row, -1] + 1).all()


def test_compact_positions_number_the_pruned_prompt_one_after_another(qwen):
    model, processor = qwen
    seen, logits = [], {}
    handle = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["position_ids"]), with_kwargs=True)
    try:
        for mode in ("original", "compact"):
            set_prune(model, processor, PruneConfig(ratio=0.7, positions=mode))
            inputs = prompt_inputs(processor, SAMPLES[:1])
            with torch.no_grad():
                logits[mode] = model(**inputs).logits
                model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)
    finally:
        handle.remove()
        set_prune(model, processor, PruneConfig())
    length = inputs["input_ids"].shape[1]
    assert (seen[-2][:, 0] == torch.arange(length)).all()  # the generate() prefill: all four rows
    assert (seen[-1][:, 0, 0] == length).all()  # then the first new token
    assert not torch.allclose(logits["original"], logits["compact"])
