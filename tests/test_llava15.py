"""LLaVA-1.5's own geometry and positions (`LlavaForConditionalGeneration`: one square view, no grid, no newline
tokens; what every family shares: tests/test_families.py): one view whatever the image's size, kept tokens at
their unpruned 1-D positions."""

import pytest
import torch
from test_families import SAMPLES, build, prompt_inputs

from gprune import PruneConfig, image_layout, set_prune


@pytest.fixture(scope="module")
def llava15():
    return build("llava")


def test_one_view_of_side_squared_tokens_whatever_the_image_size(llava15):
    model, _ = llava15
    layouts = {image_layout(model.config, (image.height, image.width)) for image, _ in SAMPLES}
    assert len(layouts) == 1
    layout = layouts.pop()
    assert (layout.full, layout.rows, layout.kept(0.5), layout.kept(0.9)) == (64, 0, 32, 6)


@pytest.mark.parametrize("method", ["gprune", "random", "visionzip"])
def test_kept_tokens_sit_at_their_unpruned_positions(llava15, method):
    model, processor = llava15
    image, text = SAMPLES[1]
    set_prune(model, processor, PruneConfig())
    full = prompt_inputs(processor, [(image, text)])
    set_prune(model, processor, PruneConfig(method=method, ratio=0.7, positions="original"))
    inputs = prompt_inputs(processor, [(image, text)])
    seen = []
    handle = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("position_ids")), with_kwargs=True)
    try:
        with torch.no_grad():
            model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)
            kept = model.model.get_image_features(inputs["pixel_values"])["kept_indices"][0]
    finally:
        handle.remove()
        set_prune(model, processor, PruneConfig())
    positions = seen[0][0]
    is_image = inputs["input_ids"][0] == model.config.image_token_id
    first_image = int(is_image.nonzero()[0])
    assert positions[is_image].tolist() == (first_image + kept).tolist()
    assert positions[-1] == full["input_ids"].shape[1] - 1  # the text after the image where it was unpruned
    assert seen[1][0].tolist() == [full["input_ids"].shape[1]]
