"""The GPU tier (`pytest -m gpu`; skipped without CUDA): on the card, in bfloat16, the fast path (static KV cache,
decode step compiled with CUDA graphs) answers exactly as the dynamic one for every method at 0 / 50 / 90%, on the
tiny model and on a narrow model of llama3-llava-next-8b's token geometry; one compiled step serves every method and
ratio of a shape; ratio 0 gives the unpruned logits; the feature cache hits. Only torch, transformers and gprune are
imported (the card has no lmms-eval, datasets or Ray). `GPRUNE_TEST_DEVICE=cpu` dry-runs it here (slowly)."""

import copy
import os

import pytest
import torch
from conftest import random_image

from gprune import PruneConfig, load_model, set_prune
from gprune.answers import AnswerRules
from gprune.decoding import Decoding
from gprune.families import FAMILIES
from gprune.feature_cache import FeatureCache
from gprune.generation import format_prompt, generate_batch
from gprune.methods import METHODS

DEVICE = torch.device(os.environ.get("GPRUNE_TEST_DEVICE", "cuda"))
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(),
                                                  reason="the GPU tier needs a CUDA card")]

RATIOS = (0.0, 0.5, 0.9)
# one cache-length bucket for all of a model's prompts: one compile per batch size, not per ratio
FAST = Decoding(cache="static", compile="on", bucket=4096)
DYNAMIC = Decoding(cache="dynamic")
RAW = AnswerRules(reasoning_tags="keep")  # stripping reasoning tags needs lmms-eval
QUESTIONS = ["What color is the shape?", "How many circles?", "Is there a red square in the image?", "What?"]


@pytest.fixture(scope="module")
def tiny_bf16():
    return load_model("tiny", device=DEVICE, dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def mixed_images():
    return [[random_image(h, w, seed)] for seed, (h, w) in enumerate([(64, 64), (48, 80), (90, 40), (64, 96)])]


def answers(model, processor, images, decoding, new_tokens=6):
    return generate_batch(model, processor, images, QUESTIONS[:len(images)], {"max_new_tokens": new_tokens},
                          decoding=decoding, answers=RAW)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_fast_path_answers_as_the_dynamic_one_for_every_method(tiny_bf16, mixed_images, method):
    model, processor = tiny_bf16
    for ratio in RATIOS:
        set_prune(model, processor, PruneConfig(method=method, ratio=ratio))
        fast, dynamic = answers(model, processor, mixed_images, FAST), answers(model, processor, mixed_images, DYNAMIC)
        assert fast.texts == dynamic.texts, (method, ratio)
        assert [s["visual_tokens_kept"] for s in fast.stats] == [s["visual_tokens_kept"] for s in dynamic.stats]


def test_one_compiled_decode_step_serves_every_method_and_ratio(tiny_bf16, mixed_images):
    model, processor = tiny_bf16
    set_prune(model, processor, PruneConfig(method="gprune", ratio=0.5))
    answers(model, processor, mixed_images, FAST)  # compiles this batch shape once (or already has)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for method in sorted(m for m, spec in METHODS.items() if spec.stage.name == "PROJECTOR"):
            for ratio in RATIOS:
                set_prune(model, processor, PruneConfig(method=method, ratio=ratio))
                answers(model, processor, mixed_images, FAST)


def test_ratio_zero_gives_the_unpruned_logits_on_the_card(tiny_bf16, mixed_images):
    model, processor = tiny_bf16
    family = next(f for f in FAMILIES if isinstance(model, f.model))
    plain = copy.deepcopy(model)  # transformers' own classes: no pruning code on its path
    plain.__class__, plain.model.__class__ = family.model, family.pruned_inner.__bases__[-1]  # (mixin, own class)
    plain_processor = copy.deepcopy(processor)
    plain_processor.__class__ = family.processor
    set_prune(model, processor, PruneConfig(ratio=0.0))
    for [image], question in zip(mixed_images, QUESTIONS):
        text = format_prompt(processor, question)
        with torch.no_grad():
            expected = plain(**plain_processor(images=image, text=text, return_tensors="pt").to(DEVICE)).logits
            actual = model(**processor(images=image, text=text, return_tensors="pt").to(DEVICE)).logits
        assert torch.equal(expected, actual)


def test_feature_cache_hits_on_the_card(tiny_bf16, mixed_images):
    model, processor = tiny_bf16
    set_prune(model, processor, PruneConfig(ratio=0.5))
    uncached = answers(model, processor, mixed_images, FAST).texts
    model.model.pruning.feature_cache = FeatureCache(max_bytes=64 << 20)
    try:
        before = model.model.pruning.images_encoded
        for ratio in (0.5, 0.9):
            set_prune(model, processor, PruneConfig(ratio=ratio))
            cached = answers(model, processor, mixed_images, FAST).texts
            if ratio == 0.5:
                assert cached == uncached
        assert model.model.pruning.images_encoded - before == len(mixed_images)
        assert model.model.pruning.feature_cache.hits == len(mixed_images)
    finally:
        model.model.pruning.feature_cache = None


def test_the_8b_token_geometry_answers_alike_on_both_paths():
    from testbed.geometry_8b import NARROW, build

    model, processor = build(NARROW, DEVICE, torch.bfloat16)
    images = [[random_image(672, 672, 0)], [random_image(336, 1008, 1)]]
    for ratio in RATIOS:
        set_prune(model, processor, PruneConfig(method="gprune", ratio=ratio))
        fast, dynamic = (answers(model, processor, images, d, new_tokens=4) for d in (FAST, DYNAMIC))
        assert fast.texts == dynamic.texts, ratio
        if ratio == 0:
            assert fast.stats[0]["visual_tokens_kept"] == 2928  # one 672x672 image, as llama3-llava-next-8b sees it


@pytest.mark.parametrize("family", ["llava15", "qwen25vl", "onevision", "mistral", "qwen2"])
def test_every_family_and_backbone_answers_alike_on_both_paths(mixed_images, family):
    """LLaVA-1.5, Qwen2.5-VL, and LLaVA-NeXT on its Mistral and Qwen2 language models (tiny, random weights: in
    float32, since a random model's near-tied logits let bf16's rounding flip a greedy token between two correct
    paths; the trained tiny model above is checked in bf16)."""
    from testbed import tiny

    if family in tiny.BACKBONES:
        model, processor = tiny.build_model(layers=4, backbone=family)
    else:
        model, processor = getattr(tiny, f"build_{family}")(layers=4)
    model = model.to(DEVICE)
    processor.tokenizer.padding_side = "left"
    for ratio in RATIOS:
        set_prune(model, processor, PruneConfig(method="gprune", ratio=ratio))
        fast, dynamic = (answers(model, processor, mixed_images, d, new_tokens=4) for d in (FAST, DYNAMIC))
        assert fast.texts == dynamic.texts, ratio


def test_the_compiled_decode_step_is_one_graph_replayed_as_a_cuda_graph(tiny_bf16, mixed_images):
    """No graph break splits the compiled decode step and (on the card) inductor does not skip CUDA graphs for it:
    either would leave Python and kernel launches between a step's matmuls, the overhead the fast path removes."""
    from torch._dynamo.utils import counters

    model, processor = tiny_bf16
    set_prune(model, processor, PruneConfig(method="gprune", ratio=0.5))
    torch._dynamo.reset()  # compile afresh here, whatever the tests before compiled
    counters.clear()
    strict = {"triton.cudagraph_or_error": True} if hasattr(torch._inductor.config.triton, "cudagraph_or_error") else {}
    with torch._inductor.config.patch(strict if DEVICE.type == "cuda" else {}):  # a skip then raises, naming why
        answers(model, processor, mixed_images, FAST)
    assert counters["stats"]["unique_graphs"] >= 1  # the decode step was compiled
    assert not counters["graph_break"], dict(counters["graph_break"])
    if DEVICE.type == "cuda":
        assert not counters["inductor"]["cudagraph_skips"], "run with TORCH_LOGS=cudagraphs,perf_hints to see why"


def test_images_are_resized_and_normalised_on_the_card(mixed_images):
    """A torchvision image processor (what llava-hf checkpoints load) works on the model's device: the pixels are
    those of the host's processing, to within resampling's rounding, and the batch answers."""
    from gprune.generation import image_device

    model, processor = load_model("tiny", device=DEVICE, dtype=torch.bfloat16, image_backend="torchvision")
    assert image_device(processor, model.device) == {"device": model.device}
    images = [image for [image] in mixed_images]
    on_card = processor.image_processor(images=images, return_tensors="pt", device=DEVICE)["pixel_values"]
    on_host = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    assert on_card.device.type == DEVICE.type and on_card.shape == on_host.shape
    assert (on_card.cpu() - on_host).abs().mean() < 0.01  # below one 8-bit level after normalising, on average
    out = answers(model, processor, mixed_images, FAST)
    assert len(out.texts) == len(mixed_images) and out.processor_seconds > 0
