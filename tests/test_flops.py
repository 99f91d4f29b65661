"""`exact` FLOPs against torch's FlopCounterMode on the tiny model (eager attention: CPU SDPA is
not counted by the flop counter), and the `fastv` convention's formula."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import LlavaNextConfig

from gprune import PruneConfig, exact_flops, fastv_flops, image_layout, load_model, set_prune
from gprune.generation import format_prompt
from gprune.methods import METHODS


@pytest.fixture(scope="module")
def eager_tiny():
    return load_model("tiny", device="cpu", attn_implementation="eager")


def counted(fn) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("method", list(METHODS))
def test_exact_flops_agree_with_flop_counter(eager_tiny, images, ratio, method):
    model, processor = eager_tiny
    prune = PruneConfig(ratio=ratio, method=method)
    set_prune(model, processor, prune)
    image = images[1]
    inputs = processor(images=image, text=format_prompt(processor, "What shape is it?"), return_tensors="pt")
    layouts = [image_layout(model.config, (image.height, image.width))]
    prefill = inputs["input_ids"].shape[1]

    measured = counted(lambda: model(**inputs))
    predicted = exact_flops(model.config, prefill, 0, layouts, prune, all_logits=True).total
    assert abs(predicted / measured - 1) < 0.02

    new = 5
    measured = counted(lambda: model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, do_sample=False))
    predicted = exact_flops(model.config, prefill, new, layouts, prune).total
    assert abs(predicted / measured - 1) < 0.02


def test_pruning_reduces_prefill_flops_in_both_conventions(eager_tiny):
    model, _ = eager_tiny
    layout = image_layout(model.config, (64, 64))
    text = 30
    full = exact_flops(model.config, text + layout.full, 1, [layout], PruneConfig())
    pruned = exact_flops(model.config, text + layout.kept(0.9), 1, [layout], PruneConfig(ratio=0.9))
    assert pruned.prefill < full.prefill / 3
    assert pruned.vision == full.vision  # the vision tower still sees every crop
    assert pruned.selection > 0 == full.selection
    assert fastv_flops(model.config, text + layout.kept(0.9)) < fastv_flops(model.config, text + layout.full) / 3


def test_fastv_formula_on_llama3_llava_next_8b_config():
    config = LlavaNextConfig(text_config={"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
                                          "num_hidden_layers": 32})
    n, d, m = 2880, 4096, 14336
    assert fastv_flops(config, n) == 32 * (4 * n * d * d + 2 * n * n * d + 2 * n * d * m)
    assert 18e12 < fastv_flops(config, n) < 20e12  # the paper's Table 1 baseline: 18.52 TFLOPs
