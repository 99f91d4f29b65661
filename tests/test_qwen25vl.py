"""Qwen2.5-VL (`Qwen2_5_VLForConditionalGeneration`: dynamic resolution, 2x2 merger, M-RoPE), a tiny random-weight
model built from a config: every method at 0 / 50 / 90% keeps exactly the budget of each image's merged grid,
ratio 0 reproduces the unpruned logits, a batch of four with mixed image sizes answers as its samples alone, kept
tokens keep their 3-D positions of the unpruned prompt, exact FLOPs agree with torch's counter, VisionZip is one
clear error, and a saved folder loads through `load_model`."""

import json

import pytest
import torch
from conftest import random_image
from torch.utils.flop_counter import FlopCounterMode

from gprune import PruneConfig, exact_flops, keep_count, load_model, set_prune
from gprune.generation import format_prompt, generate_batch
from gprune.methods import METHODS
from testbed.tiny import build_qwen25vl

LAYERS = 4
# merged grids: 8x8, 6x10, 11x5, 5x8 tokens (dynamic resolution: each image at about its own size and aspect)
SAMPLES = [(random_image(64, 64, 1), "What is in the image?"), (random_image(48, 80, 2), "Which colour?"),
           (random_image(90, 40, 3), "How many shapes are there in this picture?"), (random_image(40, 60, 4), "Is it")]
USABLE = [name for name, method in METHODS.items() if method.needs is None or method.needs.name != "VISION_ATTENTION"]


@pytest.fixture(scope="module")
def qwen():
    model, processor = build_qwen25vl(seed=3, layers=LAYERS, attn_implementation="eager")  # eager: FLOPs counted
    processor.tokenizer.padding_side = "left"
    set_prune(model, processor, PruneConfig())
    return model, processor


def prompt_inputs(processor, samples):
    return processor(images=[image for image, _ in samples],
                     text=[format_prompt(processor, text) for _, text in samples], return_tensors="pt", padding=True)


def full_counts(model, processor):
    set_prune(model, processor, PruneConfig())
    return [layout.full for layout in model.model.input_layouts(prompt_inputs(processor, SAMPLES))]


def test_each_image_is_one_view_of_its_own_merged_grid(qwen):
    model, processor = qwen
    layouts = model.model.input_layouts(prompt_inputs(processor, SAMPLES))
    assert [layout.base_grid for layout in layouts] == [(8, 8), (6, 10), (11, 5), (5, 8)]
    assert all(layout.rows == 0 and layout.full == layout.base for layout in layouts)


@pytest.mark.parametrize("method", USABLE)
def test_ratio_zero_reproduces_the_unpruned_logits(qwen, method):
    model, processor = qwen
    logits = []
    for prune in (PruneConfig(), PruneConfig(method=method, ratio=0.0)):
        set_prune(model, processor, prune)
        with torch.no_grad():
            logits.append(model(**prompt_inputs(processor, SAMPLES[:2])).logits)
    assert torch.equal(*logits)


@pytest.mark.parametrize("method", USABLE)
def test_every_method_keeps_its_budget_and_a_batch_of_four_answers_as_one(qwen, method):
    model, processor = qwen
    full = full_counts(model, processor)
    images, texts = [[image] for image, _ in SAMPLES], [text for _, text in SAMPLES]
    for ratio in (0.0, 0.5, 0.9):
        set_prune(model, processor, PruneConfig(method=method, ratio=ratio))
        four = generate_batch(model, processor, images, texts, {"max_new_tokens": 4})
        ones = [generate_batch(model, processor, [image], [text], {"max_new_tokens": 4})
                for image, text in zip(images, texts)]
        assert four.texts == [one.texts[0] for one in ones], (method, ratio)
        assert [s["visual_tokens_kept"] for s in four.stats] == [keep_count(n, ratio) for n in full], (method, ratio)
    set_prune(model, processor, PruneConfig())


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


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("method", ["gprune", "tome", "fastv"])
def test_exact_flops_agree_with_flop_counter(qwen, ratio, method):
    model, processor = qwen
    prune = PruneConfig(method=method, ratio=ratio)
    set_prune(model, processor, prune)
    inputs = prompt_inputs(processor, SAMPLES[1:2])
    layouts = model.model.input_layouts(inputs)
    prefill, new = inputs["input_ids"].shape[1], 5
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, do_sample=False)
    predicted = exact_flops(model.config, prefill, new, layouts, prune).total
    set_prune(model, processor, PruneConfig())
    assert abs(predicted / counter.get_total_flops() - 1) < 0.02


def test_visionzip_needs_a_cls_token_the_tower_does_not_have(qwen):
    model, processor = qwen
    with pytest.raises(ValueError, match=r"visionzip ranks tokens by the vision tower's \[CLS\] attention"):
        set_prune(model, processor, PruneConfig(method="visionzip", ratio=0.5))


def test_a_saved_checkpoint_loads_by_folder_and_prunes(qwen, tmp_path):
    model, processor = qwen
    set_prune(model, processor, PruneConfig())
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, loaded_processor = load_model(str(tmp_path), prune=PruneConfig(ratio=0.5), device="cpu")
    assert type(loaded).__name__ == "PrunedQwen2_5_VLForConditionalGeneration"
    image, text = SAMPLES[0]
    out = generate_batch(loaded, loaded_processor, [[image]], [text], {"max_new_tokens": 2})
    assert out.stats[0]["visual_tokens_kept"] == 32


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


def test_vision_tower_and_merger_flops_agree_with_flop_counter(qwen):
    model, processor = qwen
    set_prune(model, processor, PruneConfig())
    inputs = prompt_inputs(processor, SAMPLES)  # four resolutions, windows of several shapes
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
    flops = exact_flops(model.config, inputs["input_ids"].shape[1], 1, model.model.input_layouts(inputs))
    assert abs((flops.vision + flops.projector) / counter.get_total_flops() - 1) < 0.02


def test_gprune_eval_runs_a_saved_folder_on_a_benchmark(qwen, fixtures_dir, tmp_path, capsys):
    from cli.main import main

    model, processor = qwen
    set_prune(model, processor, PruneConfig())
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    code = main(["eval", "--model", str(tmp_path / "model"), "--benchmarks", "pope", "--data-dir", str(fixtures_dir),
                 "--limit", "4", "--method", "gprune", "--ratio", "0.75", "--json", str(tmp_path / "out.json")])
    assert code == 0, capsys.readouterr()
    pope = json.loads((tmp_path / "out.json").read_text())["pope"]
    assert pope["errors"] == 0 and len(pope["records"]) == 4
    assert all(r["visual_tokens_kept"] == keep_count(r["visual_tokens_full"], 0.75) for r in pope["records"])
