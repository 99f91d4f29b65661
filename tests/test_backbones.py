"""Every method on each language model a LLaVA-NeXT checkpoint ships with (Llama, Mistral, Qwen2: the checkpoints'
text configs at tiny sizes, random weights): ratio 0 reproduces the unpruned logits exactly, each ratio keeps the
method's budget, a batch of four answers as its samples alone, and FastV's choice at layer K is the one its
definition gives from the unmodified model's own attention weights."""

import pytest
import torch
from conftest import random_image

from gprune import PruneConfig, image_layout, set_prune
from gprune.generation import format_prompt, generate_batch
from gprune.methods import METHODS
from testbed.tiny import BACKBONES, build_model

LAYERS = 4


@pytest.fixture(scope="module")
def backbones():
    """Per backbone: (model with SDPA attention, as deployed; the same weights with eager attention, whose
    `output_attentions` is the reference)."""
    built = {}
    for name in BACKBONES:
        pair = [build_model(seed=7, hidden=64, layers=LAYERS, backbone=name, attn_implementation=kind)
                for kind in ("sdpa", "eager")]
        for model, _ in pair:
            model.generation_config.pad_token_id = pair[0][1].tokenizer.pad_token_id
        assert torch.equal(pair[0][0].lm_head.weight, pair[1][0].lm_head.weight)
        built[name] = pair
    return built


SAMPLES = [(random_image(64, 64, 1), "What is in the image?"), (random_image(48, 80, 2), "Which colour?"),
           (random_image(90, 40, 3), "How many shapes are there in this picture?"), (random_image(40, 60, 4), "Is it")]


def _prompt_inputs(processor, samples):
    return processor(images=[image for image, _ in samples],
                     text=[format_prompt(processor, text) for _, text in samples], return_tensors="pt", padding=True)


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("method", list(METHODS))
def test_ratio_zero_reproduces_the_unpruned_logits(backbones, backbone, method):
    (model, processor), _ = backbones[backbone]
    logits = []
    for prune in (PruneConfig(), PruneConfig(method=method, ratio=0.0)):
        set_prune(model, processor, prune)
        with torch.no_grad():
            logits.append(model(**_prompt_inputs(processor, SAMPLES[:2])).logits)
    assert torch.equal(*logits)


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_keeps_its_budget_and_a_batch_of_four_answers_as_one(backbones, backbone, method):
    (model, processor), _ = backbones[backbone]
    for ratio in (0.5, 0.9):
        set_prune(model, processor, PruneConfig(method=method, ratio=ratio))
        images, texts = [[image] for image, _ in SAMPLES], [text for _, text in SAMPLES]
        four = generate_batch(model, processor, images, texts, {"max_new_tokens": 4})
        ones = [generate_batch(model, processor, [image], [text], {"max_new_tokens": 4})
                for image, text in zip(images, texts)]
        assert four.texts == [one.texts[0] for one in ones], (method, ratio)
        budget = [image_layout(model.config, (image.height, image.width)).kept(ratio) for image, _ in SAMPLES]
        assert [s["visual_tokens_kept"] for s in four.stats] == budget, (method, ratio)
    set_prune(model, processor, PruneConfig())


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("lm_layer", [1, 2, LAYERS - 1])
def test_fastv_keeps_what_layer_k_minus_1_s_attention_weights_choose(backbones, backbone, lm_layer):
    """The reference: the unpruned model's eager attention weights of layer K-1 (`output_attentions`), the last
    prompt token's row averaged over heads, ranked within each image under the shared budget rule; FastV then
    drops the rest from layer K's KV cache on."""
    from gprune.budget import reduce_image

    _, (model, processor) = backbones[backbone]
    inputs = _prompt_inputs(processor, SAMPLES[:3])  # left-padded: the rows have different lengths
    prune = PruneConfig(method="fastv", ratio=0.7, lm_layer=lm_layer)
    set_prune(model, processor, PruneConfig())
    with torch.no_grad():
        weights = model(**inputs, output_attentions=True).attentions[lm_layer - 1]  # [B, heads, L, L]
    row = weights[:, :, -1].mean(dim=1)
    reference = []
    for sample, (image, _) in enumerate(SAMPLES[:3]):
        columns = (inputs["input_ids"][sample] == model.config.image_token_id).nonzero()[:, 0]
        layout = image_layout(model.config, (image.height, image.width))
        reference.append(reduce_image(row[sample, columns][:, None], layout, prune)[0])

    set_prune(model, processor, prune)
    model.model.pruning.trace = []
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False,
                             return_dict_in_generate=True)
    traced, model.model.pruning.trace = model.model.pruning.trace, None
    set_prune(model, processor, PruneConfig())
    assert [torch.equal(indices, expected) for (_, indices, _), expected in zip(traced, reference)] == [True] * 3
    for (scores, _, _), sample in zip(traced, range(3)):
        columns = (inputs["input_ids"][sample] == model.config.image_token_id).nonzero()[:, 0]
        torch.testing.assert_close(scores[:, 0], row[sample, columns], rtol=1e-5, atol=1e-7)
    # one reduced length for the batch: the prompt less what the least-dropping sample drops
    dropped = min(len(scores) - len(indices) for scores, indices, _ in traced)
    prompt = inputs["input_ids"].shape[1]
    lengths = [out["cache"].get_seq_length(layer) for layer in range(LAYERS)]
    assert lengths == [prompt + 2] * lm_layer + [prompt - dropped + 2] * (LAYERS - lm_layer)


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("method", ["gprune", "fastv"])
def test_a_static_kv_cache_answers_as_the_dynamic_one(backbones, backbone, method):
    """The path a GPU takes by default (static cache, there compiled). Qwen2's layer types make transformers pass
    the static path's masks as a dict per layer kind, which the positions of kept tokens must read too."""
    from gprune.decoding import Decoding

    (model, processor), _ = backbones[backbone]
    set_prune(model, processor, PruneConfig(method=method, ratio=0.5))
    images, texts = [[image] for image, _ in SAMPLES], [text for _, text in SAMPLES]
    answers = [generate_batch(model, processor, images, texts, {"max_new_tokens": 5},
                              decoding=Decoding(cache=kind, compile="off")) for kind in ("dynamic", "static")]
    set_prune(model, processor, PruneConfig())
    assert answers[0].texts == answers[1].texts
